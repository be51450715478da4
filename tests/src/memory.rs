//! This process's peak memory, for tests that bound what a large message costs: the
//! high-water mark of its resident set (`VmHWM`), reset first where the kernel lets us.
//! Linux only; a test using it must not share its process with others running at once
//! (the mark is the whole process's).

/// A field of `/proc/self/status`, in KiB (`"VmHWM:"`, `"VmRSS:"`).
pub fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// The peak from now on.
#[derive(Debug, Clone, Copy)]
pub struct PeakRss {
    /// The baseline, in KiB.
    pub before: u64,
    /// The high-water mark was reset (`/proc/self/clear_refs`); if not, the baseline is the
    /// peak so far (or the RSS, if higher), and only growth above it shows.
    pub reset: bool,
}

impl PeakRss {
    /// Resets the high-water mark where allowed and takes the baseline.
    pub fn start() -> PeakRss {
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let before = if reset {
            proc_status_kib("VmHWM:")
        } else {
            proc_status_kib("VmHWM:").max(proc_status_kib("VmRSS:"))
        };
        PeakRss { before, reset }
    }

    /// The peak now, in KiB.
    pub fn peak(&self) -> u64 {
        proc_status_kib("VmHWM:")
    }

    /// How far the peak rose above the baseline, in KiB.
    pub fn growth(&self) -> u64 {
        self.peak().saturating_sub(self.before)
    }

    /// [`PeakRss::growth`], after printing it with the figures behind it for `what` (the
    /// test's output, for whoever reads a failure or records a measurement).
    pub fn report(&self, what: &str) -> u64 {
        let peak = self.peak();
        let growth = peak.saturating_sub(self.before);
        eprintln!(
            "{what}: peak RSS {} KiB -> {peak} KiB (+{growth} KiB; HWM reset: {})",
            self.before, self.reset
        );
        growth
    }
}

/// About `size` bytes of XML (`<x>` around lines of filler) as one shared buffer: a large
/// prebuilt reply's payload, built before a test takes its baseline.
pub fn filler_xml(size: usize) -> bytes::Bytes {
    let mut xml = String::with_capacity(size + 16);
    xml.push_str("<x>");
    while xml.len() < size - 4 {
        xml.push_str("yyyyyyyyyyyyyyy\n");
    }
    xml.push_str("</x>");
    bytes::Bytes::from(xml)
}
