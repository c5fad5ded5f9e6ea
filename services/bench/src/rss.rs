//! Peak resident memory of a process: `VmHWM` ("high water mark") in `/proc/<pid>/status`, which
//! the kernel keeps for the process's whole life, so one read after the run gives its peak.

/// The `VmHWM` line of a `/proc/<pid>/status` text, in KiB.
pub fn parse_vm_hwm_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix("VmHWM:")?;
        let mut parts = rest.split_whitespace();
        let value = parts.next()?.parse().ok()?;
        // The kernel always writes kB; anything else is not a format we understand.
        (parts.next() == Some("kB")).then_some(value)
    })
}

/// Peak RSS of a live process in KiB; `None` when it has exited or `/proc` is not Linux's.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm_kib(&status)
}

/// Resets the high water mark to the current RSS (`echo 5 > /proc/<pid>/clear_refs`), so the
/// next read covers only what ran since. Needs to own the process or be root.
pub fn reset_peak(pid: u32) -> std::io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_high_water_mark_not_the_current_rss() {
        let status =
            "Name:\tinventory\nVmPeak:\t  900000 kB\nVmHWM:\t   41234 kB\nVmRSS:\t   30000 kB\n";
        assert_eq!(parse_vm_hwm_kib(status), Some(41_234));
    }

    #[test]
    fn a_missing_or_odd_line_gives_none() {
        assert_eq!(parse_vm_hwm_kib("Name:\tx\nVmRSS:\t1 kB\n"), None);
        assert_eq!(parse_vm_hwm_kib("VmHWM:\tlots kB\n"), None);
        assert_eq!(parse_vm_hwm_kib("VmHWM:\t12 pages\n"), None);
    }

    #[test]
    fn this_process_has_a_peak() {
        let kib = peak_rss_kib(std::process::id()).unwrap();
        assert!(kib > 100, "{kib} KiB");
    }
}
