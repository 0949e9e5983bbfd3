//! This machine and its processes, for the deploy lock: the host name, whether a process
//! still runs, the boot a process id belongs to, and a random token. Every Unix answers
//! from the kernel (`kill(pid, 0)` and `uname` through rustix; the boot id on Linux, the
//! boot time from `sysctl` on macOS and the BSDs); Windows from `tasklist`. Elsewhere a
//! process's liveness is unknown, and a lock of a killed run waits for its expiry. Imports
//! nothing from the crate.

/// This machine's name.
pub fn hostname() -> String {
    Some(system_hostname())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(unix)]
fn system_hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().trim().to_string()
}

#[cfg(not(unix))]
fn system_hostname() -> String {
    String::new()
}

/// Whether process `pid` of this machine runs: `None` when the system does not say.
#[cfg(unix)]
pub fn process_alive(pid: u32) -> Option<bool> {
    // A pid that is not a positive `pid_t` names no process (and must never reach kill(2),
    // where a negative one means a process group).
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return Some(false) };
    // Signal 0: kill(2) only checks that the process exists.
    match rustix::process::test_kill_process(pid) {
        // EPERM: it runs, as another user.
        Ok(()) | Err(rustix::io::Errno::PERM) => Some(true),
        Err(rustix::io::Errno::SRCH) => Some(false),
        Err(_) => None,
    }
}

/// Whether process `pid` of this machine runs: `None` when the system does not say.
#[cfg(windows)]
pub fn process_alive(pid: u32) -> Option<bool> {
    // `tasklist` ships with Windows; in CSV a running process's line has `"<pid>"`.
    let filter = format!("PID eq {pid}");
    let output = std::process::Command::new("tasklist").args(["/FI", &filter, "/NH", "/FO", "CSV"]).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).contains(&format!("\"{pid}\"")))
}

/// Whether process `pid` of this machine runs: `None` when the system does not say.
#[cfg(not(any(unix, windows)))]
pub fn process_alive(_pid: u32) -> Option<bool> {
    None
}

/// What a process id means something within: the boot (and on Linux the PID namespace, as
/// containers may share a host name). `None` when the system does not tell.
pub fn boot() -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let pidns = std::fs::read_link("/proc/self/ns/pid").ok()?;
        Some(format!("{} {}", boot.trim(), pidns.display()))
    }
    #[cfg(any(target_os = "macos", target_os = "freebsd", target_os = "openbsd", target_os = "netbsd"))]
    {
        // `{ sec = 1733100000, usec = 123456 } Mon Dec  2 …`: the same for every process
        // of one boot.
        let output = std::process::Command::new("sysctl").args(["-n", "kern.boottime"]).output().ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        let boot = text.split('}').next()?.trim();
        (output.status.success() && !boot.is_empty()).then(|| format!("boot {boot}}}"))
    }
    // Windows has no PID namespaces; a pid reused after a reboot only makes a dead holder
    // look alive, and its lock then waits for its expiry: the safe side.
    #[cfg(windows)]
    {
        Some("windows".to_string())
    }
    #[cfg(not(any(
        windows,
        target_os = "linux",
        target_os = "macos",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd"
    )))]
    {
        None
    }
}

/// 16 random hex digits from the system's generator (a clock-and-pid digest if it fails).
pub fn random_token() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let nanos = u64::try_from(now.as_nanos() % u128::from(u64::MAX)).unwrap_or_default();
        bytes = (nanos ^ (u64::from(std::process::id()) << 32)).to_le_bytes();
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_an_impossible_one_does_not() {
        if cfg!(unix) {
            assert_eq!(process_alive(std::process::id()), Some(true));
            assert_eq!(process_alive(u32::MAX - 1), Some(false), "not a pid_t: never a process group");
            assert_eq!(process_alive(0), Some(false));
        }
        assert!(!hostname().is_empty());
        if cfg!(any(target_os = "linux", target_os = "macos")) {
            assert!(boot().is_some());
            assert_eq!(boot(), boot(), "the same boot");
        }
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }
}
