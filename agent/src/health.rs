//! System health: a pure 0–100 score with ok/warn/critical levels from
//! thresholds, and the sysinfo shell that samples the machine.

use protocol::{DiskUsage, HealthLevel, HealthSample, ProcessUsage, UnixMillis};
use sysinfo::{Disks, ProcessRefreshKind, ProcessesToUpdate, System};

/// Most processes reported per sample, by CPU and by memory each.
pub const TOP_PROCESSES: usize = 5;

/// Levels at which a resource turns a sample to warn or critical.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub cpu_warn_pct: f32,
    pub cpu_critical_pct: f32,
    pub ram_warn_pct: f32,
    pub ram_critical_pct: f32,
    pub disk_warn_pct: f32,
    pub disk_critical_pct: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            cpu_warn_pct: 80.0,
            cpu_critical_pct: 95.0,
            ram_warn_pct: 80.0,
            ram_critical_pct: 90.0,
            disk_warn_pct: 90.0,
            disk_critical_pct: 97.0,
        }
    }
}

/// Raw readings before scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub at_ms: UnixMillis,
    pub cpu_pct: f32,
    pub mem_used_bytes: u64,
    pub mem_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub swap_total_bytes: u64,
    pub disks: Vec<DiskUsage>,
    pub uptime_secs: u64,
    pub load_avg: [f32; 3],
    pub top_processes: Vec<ProcessUsage>,
}

fn pct(used: u64, total: u64) -> f32 {
    if total == 0 {
        0.0
    } else {
        (used as f64 / total as f64 * 100.0) as f32
    }
}

/// Linear penalty: 0 at `from_pct`, `max_points` at 100 %.
fn penalty(value_pct: f32, from_pct: f32, max_points: f32) -> f32 {
    if !value_pct.is_finite() || value_pct <= from_pct {
        return 0.0;
    }
    ((value_pct - from_pct) / (100.0 - from_pct)).min(1.0) * max_points
}

fn level_of(value_pct: f32, warn_pct: f32, critical_pct: f32) -> HealthLevel {
    if value_pct >= critical_pct {
        HealthLevel::Critical
    } else if value_pct >= warn_pct {
        HealthLevel::Warn
    } else {
        HealthLevel::Ok
    }
}

/// Scores a reading: 100 is an idle, roomy machine. The level is the worst
/// of each resource's threshold level and of the score itself
/// (below 75 warn, below 50 critical).
pub fn score(reading: Reading, thresholds: &Thresholds) -> HealthSample {
    let ram_pct = pct(reading.mem_used_bytes, reading.mem_total_bytes);
    let swap_pct = pct(reading.swap_used_bytes, reading.swap_total_bytes);
    let disk_pct = reading
        .disks
        .iter()
        .map(|disk| pct(disk.used_bytes, disk.total_bytes))
        .fold(0.0_f32, f32::max);
    let penalty_points = penalty(reading.cpu_pct, 50.0, 30.0)
        + penalty(ram_pct, 60.0, 40.0)
        + penalty(disk_pct, 70.0, 30.0)
        + penalty(swap_pct, 25.0, 10.0);
    let score = (100.0 - penalty_points).clamp(0.0, 100.0).round() as u8;
    let score_level = match score {
        0..=49 => HealthLevel::Critical,
        50..=74 => HealthLevel::Warn,
        _ => HealthLevel::Ok,
    };
    let level = [
        score_level,
        level_of(
            reading.cpu_pct,
            thresholds.cpu_warn_pct,
            thresholds.cpu_critical_pct,
        ),
        level_of(
            ram_pct,
            thresholds.ram_warn_pct,
            thresholds.ram_critical_pct,
        ),
        level_of(
            disk_pct,
            thresholds.disk_warn_pct,
            thresholds.disk_critical_pct,
        ),
    ]
    .into_iter()
    .max()
    .unwrap_or(HealthLevel::Ok);
    HealthSample {
        at_ms: reading.at_ms,
        cpu_pct: reading.cpu_pct,
        mem_used_bytes: reading.mem_used_bytes,
        mem_total_bytes: reading.mem_total_bytes,
        swap_used_bytes: reading.swap_used_bytes,
        swap_total_bytes: reading.swap_total_bytes,
        disks: reading.disks,
        uptime_secs: reading.uptime_secs,
        load_avg: reading.load_avg,
        top_processes: reading.top_processes,
        score,
        level,
    }
}

/// Reads the machine's health; the shell around [`score`].
pub trait HealthSensor: Send {
    fn read(&mut self, at_ms: UnixMillis) -> Reading;
}

/// The real machine, through sysinfo. Keeps its `System` between samples so
/// CPU usage is measured over the sampling interval.
#[derive(Debug)]
pub struct SysinfoHealth {
    system: System,
    disks: Disks,
}

impl Default for SysinfoHealth {
    fn default() -> Self {
        let mut system = System::new();
        system.refresh_cpu_usage();
        SysinfoHealth {
            system,
            disks: Disks::new_with_refreshed_list(),
        }
    }
}

/// File systems that say nothing about the workstation's disks.
fn is_pseudo_fs(file_system: &str) -> bool {
    matches!(
        file_system,
        "tmpfs" | "devtmpfs" | "overlay" | "squashfs" | "proc" | "sysfs" | "ramfs"
    )
}

impl HealthSensor for SysinfoHealth {
    fn read(&mut self, at_ms: UnixMillis) -> Reading {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        self.disks.refresh(true);

        let mut disks: Vec<DiskUsage> = self
            .disks
            .list()
            .iter()
            .filter(|disk| !is_pseudo_fs(&disk.file_system().to_string_lossy()))
            .map(|disk| DiskUsage {
                mount: disk.mount_point().to_string_lossy().into_owned(),
                used_bytes: disk.total_space().saturating_sub(disk.available_space()),
                total_bytes: disk.total_space(),
            })
            .collect();
        disks.sort_by(|a, b| a.mount.cmp(&b.mount));
        disks.dedup_by(|a, b| a.mount == b.mount);

        let mut processes: Vec<ProcessUsage> = self
            .system
            .processes()
            .values()
            .map(|process| ProcessUsage {
                name: process.name().to_string_lossy().into_owned(),
                cpu_pct: process.cpu_usage(),
                mem_bytes: process.memory(),
            })
            .collect();
        let mut top = Vec::with_capacity(2 * TOP_PROCESSES);
        processes.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct));
        top.extend(processes.iter().take(TOP_PROCESSES).cloned());
        processes.sort_by_key(|process| std::cmp::Reverse(process.mem_bytes));
        for process in processes.into_iter().take(TOP_PROCESSES) {
            if !top.contains(&process) {
                top.push(process);
            }
        }

        let load = System::load_average();
        Reading {
            at_ms,
            cpu_pct: self.system.global_cpu_usage(),
            mem_used_bytes: self.system.used_memory(),
            mem_total_bytes: self.system.total_memory(),
            swap_used_bytes: self.system.used_swap(),
            swap_total_bytes: self.system.total_swap(),
            disks,
            uptime_secs: System::uptime(),
            load_avg: [load.one as f32, load.five as f32, load.fifteen as f32],
            top_processes: top,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn reading(cpu_pct: f32, ram_used_gib: u64, disk_used_gib: u64) -> Reading {
        Reading {
            at_ms: 0,
            cpu_pct,
            mem_used_bytes: ram_used_gib * GIB,
            mem_total_bytes: 100 * GIB,
            swap_used_bytes: 0,
            swap_total_bytes: 0,
            disks: vec![DiskUsage {
                mount: "/".into(),
                used_bytes: disk_used_gib * GIB,
                total_bytes: 100 * GIB,
            }],
            uptime_secs: 60,
            load_avg: [0.0; 3],
            top_processes: Vec::new(),
        }
    }

    #[test]
    fn scores_and_levels() {
        let thresholds = Thresholds::default();
        // (cpu %, ram %, disk %) → (score, level)
        let cases = [
            ((5.0, 20, 30), (100, HealthLevel::Ok)),
            ((80.0, 20, 30), (82, HealthLevel::Warn)),
            ((50.0, 90, 30), (70, HealthLevel::Critical)),
            ((10.0, 50, 90), (80, HealthLevel::Warn)),
            ((100.0, 100, 100), (0, HealthLevel::Critical)),
            ((f32::NAN, 0, 0), (100, HealthLevel::Ok)),
        ];
        for ((cpu, ram, disk), (expected_score, expected_level)) in cases {
            let sample = score(reading(cpu, ram, disk), &thresholds);
            assert_eq!(
                (sample.score, sample.level),
                (expected_score, expected_level),
                "cpu {cpu} ram {ram} disk {disk}"
            );
        }
    }

    #[test]
    fn empty_totals_do_not_divide_by_zero() {
        let mut empty = reading(0.0, 0, 0);
        empty.mem_total_bytes = 0;
        empty.disks[0].total_bytes = 0;
        assert_eq!(score(empty, &Thresholds::default()).score, 100);
    }

    #[test]
    fn real_machine_reading_is_plausible() {
        let mut sensor = SysinfoHealth::default();
        let reading = sensor.read(1);
        assert!(reading.mem_total_bytes > 0);
        assert!(reading.mem_used_bytes <= reading.mem_total_bytes);
        assert!(reading.uptime_secs > 0);
        assert!(reading.top_processes.len() <= 2 * TOP_PROCESSES);
        assert!(!reading.top_processes.is_empty());
    }
}
