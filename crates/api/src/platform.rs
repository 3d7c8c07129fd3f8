//! This machine's platform as Go (and so Kubernetes and OCI) names it: `linux/amd64`, not
//! Rust's `linux/x86_64`.

/// The architecture in Go's terms (`amd64`, `arm64`, ...): `std::env::consts::ARCH` mapped.
pub fn go_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// `OS/ARCH` as Kubernetes' `/version` and client User-Agents write it (`linux/amd64`).
pub fn platform() -> String {
    format!("{}/{}", std::env::consts::OS, go_architecture())
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    fn x86_64_linux_is_go_s_linux_amd64() {
        assert_eq!(super::platform(), "linux/amd64");
    }
}
