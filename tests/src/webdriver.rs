//! A headless Chromium driven over WebDriver (W3C, JSON over HTTP) through Debian's
//! `chromedriver`: enough of the protocol for the dashboard test (navigate, find, type, click,
//! read the page, cookies, screenshots). The WebDriver crates pull in a second TLS stack
//! (aws-lc, which needs cmake); this speaks the protocol with the blocking reqwest the tests
//! already use.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use serde_json::{json, Value};

/// How long chromedriver may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The key W3C WebDriver names element references by.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session of it; both end on drop.
pub struct Browser {
    driver: Child,
    http: reqwest::blocking::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
}

/// An element of the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts `chromedriver` on a port of its choice and a headless Chromium with its profile
    /// in `profile_dir`, accepting the test cluster's self-signed certificates.
    pub fn start(profile_dir: &Path) -> anyhow::Result<Self> {
        let mut driver = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (Debian: apt-get install chromium chromium-driver)")?;
        let stdout = driver.stdout.take().context("chromedriver's stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = match rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => port,
            Err(err) => {
                let _ = driver.kill();
                let _ = driver.wait();
                anyhow::bail!("chromedriver did not say its port: {err}");
            }
        };
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let mut browser = Browser {
            driver,
            http,
            session: String::new(),
        };
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         format!("--user-data-dir={}", profile_dir.display())],
            },
        }}});
        let base = format!("http://127.0.0.1:{port}/session");
        let created = browser.call(reqwest::Method::POST, &base, Some(capabilities))?;
        let id = created["sessionId"]
            .as_str()
            .context("no sessionId in the new session")?;
        browser.session = format!("{base}/{id}");
        Ok(browser)
    }

    fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let request = self.http.request(method.clone(), url);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request.send().with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let answer: Value = response.json().with_context(|| format!("{method} {url}"))?;
        anyhow::ensure!(status.is_success(), "{method} {url}: {status} {answer}");
        Ok(answer["value"].clone())
    }

    fn session_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        self.call(method, &format!("{}{path}", self.session), body)
    }

    /// Opens `url` and waits until it has loaded.
    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.session_call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .map(drop)
    }

    /// The address of the current page.
    pub fn url(&self) -> anyhow::Result<String> {
        let url = self.session_call(reqwest::Method::GET, "/url", None)?;
        Ok(url.as_str().unwrap_or_default().to_string())
    }

    /// The current page's DOM, serialized (with what scripts have added).
    pub fn source(&self) -> anyhow::Result<String> {
        let source = self.session_call(reqwest::Method::GET, "/source", None)?;
        Ok(source.as_str().unwrap_or_default().to_string())
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> anyhow::Result<Element<'_>> {
        let found = self
            .session_call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .with_context(|| format!("finding {css}"))?;
        let id = found[ELEMENT_KEY]
            .as_str()
            .with_context(|| format!("{css}: no element reference in {found}"))?;
        Ok(Element {
            browser: self,
            id: id.to_string(),
        })
    }

    /// The result of a script run in the page (`return ...;`).
    pub fn execute(&self, script: &str) -> anyhow::Result<Value> {
        self.session_call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The cookies of the current page's site, as WebDriver reports them (with `httpOnly`,
    /// `secure`, `sameSite`).
    pub fn cookies(&self) -> anyhow::Result<Vec<Value>> {
        let cookies = self.session_call(reqwest::Method::GET, "/cookie", None)?;
        Ok(cookies.as_array().cloned().unwrap_or_default())
    }

    /// Deletes every cookie of the current site.
    pub fn delete_cookies(&self) -> anyhow::Result<()> {
        self.session_call(reqwest::Method::DELETE, "/cookie", None)
            .map(drop)
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let data = self.session_call(reqwest::Method::GET, "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .context("decoding the screenshot")?;
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }
}

impl Element<'_> {
    fn path(&self, action: &str) -> String {
        format!("/element/{}/{action}", self.id)
    }

    /// Types `text` into the element.
    pub fn type_text(&self, text: &str) -> anyhow::Result<()> {
        self.browser
            .session_call(
                reqwest::Method::POST,
                &self.path("value"),
                Some(json!({"text": text})),
            )
            .map(drop)
    }

    /// Clicks the element.
    pub fn click(&self) -> anyhow::Result<()> {
        self.browser
            .session_call(reqwest::Method::POST, &self.path("click"), Some(json!({})))
            .map(drop)
    }

    /// The element's rendered text.
    pub fn text(&self) -> anyhow::Result<String> {
        let text = self
            .browser
            .session_call(reqwest::Method::GET, &self.path("text"), None)?;
        Ok(text.as_str().unwrap_or_default().to_string())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.http.delete(&self.session).send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
