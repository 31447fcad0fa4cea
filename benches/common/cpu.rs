//! CPU accounting from /proc (Linux) for the benchmarks: the whole process, and the threads
//! whose name starts with a prefix (to tell a load generator or a fake server from the code
//! under test).

#[derive(Clone, Copy)]
pub struct CpuSample {
    /// CPU seconds of the whole process (exited threads included).
    pub total: f64,
    /// CPU seconds of the threads named with the prefix.
    pub named: f64,
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime + stime (fields 14 and 15) of a `/proc/.../stat` line, in clock ticks, and `comm`.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // After "pid (comm) ": field 3 (state) is index 0, so utime (14) is index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// The process's CPU time and that of its threads named `prefix…` (`comm` is truncated to 15
/// bytes: keep prefixes shorter).
pub fn sample(prefix: &str) -> Option<CpuSample> {
    let hz = ticks_per_sec();
    let (_, total) = parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let mut named = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some((comm, ticks)) = parse_stat(&stat) {
            if comm.starts_with(prefix) {
                named += ticks;
            }
        }
    }
    Some(CpuSample {
        total: total as f64 / hz,
        named: named as f64 / hz,
    })
}
