//! `logship bench`: measures each phase of a restore pipeline on generated data, and the whole
//! catch-up against the simulated secondary, each figure beside a baseline measured in the same
//! run (RESTORE HEADERONLY through the simulator, `cp -r`, `cp -r` then `b3sum`, max(copy, apply)).
//!
//! Runs are interleaved (every phase once per run, then again), and each figure reports the
//! median and the spread (min-max) of its runs. The rates the run measured are saved for the
//! estimate `logship plan` prints (see [`rates`]).

mod phases;
mod pipeline;
pub mod rates;
mod real;
pub mod stats;
mod table;

use std::path::PathBuf;

use serde::Serialize;

pub use phases::{header_share, synthetic_logs};
pub use real::{run_real, RealSpec};
pub use stats::Samples;
pub use table::render;

/// How much data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// Tiny data for CI: shows the shape, not the speed.
    Quick,
    /// Under two minutes on two cores.
    Default,
    /// The issues' figures: 500 logs of 8 MiB for the catch-up.
    Full,
}

/// The data each phase works on, for a size.
#[derive(Clone, Debug, Serialize)]
pub struct Data {
    /// Small logs for the header rate.
    pub header_logs: u32,
    pub header_log_size: u64,
    /// Files read through the simulator's RESTORE HEADERONLY (one round trip each).
    pub sim_header_files: usize,
    /// Synthesized (in memory) logs for the planner.
    pub plan_logs: u32,
    /// The catch-up share, also the copy phase's data.
    pub logs: u32,
    pub log_size: u64,
    pub drill_logs: u32,
    pub drill_log_size: u64,
}

impl Data {
    pub fn of(size: Size) -> Data {
        match size {
            Size::Quick => Data {
                header_logs: 40,
                header_log_size: 8 << 10,
                sim_header_files: 20,
                plan_logs: 10_000,
                logs: 6,
                log_size: 256 << 10,
                drill_logs: 4,
                drill_log_size: 64 << 10,
            },
            Size::Default => Data {
                header_logs: 2_000,
                header_log_size: 8 << 10,
                sim_header_files: 500,
                plan_logs: 10_000,
                logs: 60,
                log_size: 4 << 20,
                drill_logs: 40,
                drill_log_size: 1 << 20,
            },
            Size::Full => Data {
                header_logs: 10_000,
                header_log_size: 8 << 10,
                sim_header_files: 2_000,
                plan_logs: 10_000,
                logs: 500,
                log_size: 8 << 20,
                drill_logs: 200,
                drill_log_size: 4 << 20,
            },
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchSpec {
    pub size: Size,
    pub runs: usize,
    /// Where the generated data goes (a temporary folder inside it, removed afterwards).
    pub dir: PathBuf,
    /// The `logship` program: the drill's chat shell stands in for powershell.exe through it.
    pub logship_exe: PathBuf,
    /// Print a line per phase on stderr.
    pub verbose: bool,
}

/// The median and spread of a figure.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: Vec<f64>,
}

impl From<&Samples> for Summary {
    fn from(s: &Samples) -> Summary {
        Summary {
            median: s.median(),
            min: s.min(),
            max: s.max(),
            runs: s.values.clone(),
        }
    }
}

/// What a figure is compared with.
#[derive(Clone, Debug, Serialize)]
pub struct Baseline {
    pub name: String,
    /// `None`: the baseline could not be measured here (`absent` says why).
    pub value: Option<Summary>,
    /// Not measured but a fixed target (the plan time's 50 ms).
    pub is_target: bool,
    pub absent: Option<String>,
}

/// One row of the table.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub key: String,
    pub name: String,
    pub unit: String,
    pub higher_is_better: bool,
    pub value: Summary,
    pub baseline: Option<Baseline>,
    /// Median of the figure divided by the median of the baseline.
    pub ratio: Option<f64>,
    /// What the issues ask for, e.g. "<= 1.1".
    pub target: Option<String>,
    pub note: Option<String>,
}

impl Figure {
    pub fn new(key: &str, name: impl Into<String>, unit: &str, higher: bool, v: &Samples) -> Self {
        Figure {
            key: key.into(),
            name: name.into(),
            unit: unit.into(),
            higher_is_better: higher,
            value: v.into(),
            baseline: None,
            ratio: None,
            target: None,
            note: None,
        }
    }

    pub fn against(mut self, name: impl Into<String>, b: &Samples) -> Self {
        let value = (!b.is_empty()).then(|| Summary::from(b));
        self.ratio = value
            .as_ref()
            .filter(|v| v.median > 0.0)
            .map(|v| self.value.median / v.median);
        self.baseline = Some(Baseline {
            name: name.into(),
            value,
            is_target: false,
            absent: None,
        });
        self
    }

    pub fn against_target(mut self, name: impl Into<String>, target: f64) -> Self {
        let mut b = Samples::default();
        b.push(target);
        self = self.against(name, &b);
        if let Some(b) = &mut self.baseline {
            b.is_target = true;
        }
        self
    }

    pub fn absent(mut self, name: impl Into<String>, why: impl Into<String>) -> Self {
        self.baseline = Some(Baseline {
            name: name.into(),
            value: None,
            is_target: false,
            absent: Some(why.into()),
        });
        self.ratio = None;
        self
    }

    pub fn target(mut self, t: &str) -> Self {
        self.target = Some(t.into());
        self
    }

    pub fn note(mut self, n: impl Into<String>) -> Self {
        self.note = Some(n.into());
        self
    }
}

/// The machine the figures come from.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub memory_mib: Option<u64>,
    pub cpu: Option<String>,
    pub os: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let nproc = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib / 1024);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string());
        Machine {
            nproc,
            memory_mib,
            cpu,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// The plan estimate set against the measured catch-up of the same data.
#[derive(Clone, Debug, Serialize)]
pub struct EstimateCheck {
    pub estimate_seconds: f64,
    pub measured_seconds: f64,
    /// (estimate - measured) / measured.
    pub error: f64,
    pub within_25_percent: bool,
}

/// Everything a bench run produced.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub command: String,
    pub mode: String,
    pub runs: usize,
    pub machine: Machine,
    pub data: Option<Data>,
    pub figures: Vec<Figure>,
    pub estimate_check: Option<EstimateCheck>,
    /// Where the measured rates were saved (`None`: not saved).
    pub rates_file: Option<PathBuf>,
    pub rates: Option<rates::Rates>,
    pub notes: Vec<String>,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("generating the benchmark data")]
    Share(#[from] crate::backup::share::ShareError),
    #[error("copying the benchmark data")]
    Copy(#[from] crate::copy::CopyError),
    #[error("{what}: {detail}")]
    Failed { what: String, detail: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// Runs every phase `spec.runs` times on generated data. The caller saves the rates.
pub fn run(spec: &BenchSpec) -> Result<BenchReport, BenchError> {
    let started = std::time::Instant::now();
    let data = Data::of(spec.size);
    std::fs::create_dir_all(&spec.dir).map_err(io(format!("creating {}", spec.dir.display())))?;
    let work = tempfile::Builder::new()
        .prefix("logship-bench-")
        .tempdir_in(&spec.dir)
        .map_err(io(format!("creating a folder in {}", spec.dir.display())))?;
    let rt = tokio::runtime::Runtime::new().map_err(io("starting the async runtime"))?;
    let mut notes = Vec::new();

    let say = |m: &str| {
        if spec.verbose {
            eprintln!("bench: {m}");
        }
    };
    say(&format!("generating data in {}", work.path().display()));
    let headers = phases::HeaderData::generate(work.path(), &data)?;
    let world = pipeline::World::generate(work.path(), &data)?;
    let plan_input = phases::PlanData::synthesize(data.plan_logs);

    let mut m = phases::Measured::default();
    let mut p = pipeline::Measured::default();
    // Untimed warm-up: fills the page cache, makes the verified copy the apply-only runs start
    // from, and measures the copy rate the simulator's restore rate is set to.
    say("warm-up copy");
    let copy_rate = world.warm_up()?;
    for run in 1..=spec.runs {
        say(&format!("run {run}/{}: headers", spec.runs));
        phases::headers(&rt, &headers, &world, &mut m)?;
        say(&format!("run {run}/{}: plan", spec.runs));
        phases::plan(&plan_input, &mut m);
        say(&format!("run {run}/{}: copy", spec.runs));
        phases::copy(&world, run, &mut m)?;
        say(&format!("run {run}/{}: catch-up", spec.runs));
        pipeline::catchups(&rt, &world, copy_rate, run, &mut p)?;
        say(&format!("run {run}/{}: drill", spec.runs));
        pipeline::drill(&rt, &world, &data, spec, run, &mut p)?;
    }
    let mut figures = m.figures(&headers, &data);
    figures.extend(p.figures(copy_rate));
    let rates = p.rates(&world, copy_rate, &m);
    let estimate_check = p.estimate_check(&world, &rates);
    if !stats::on_path("b3sum") {
        notes.push("b3sum is not on PATH: the cp-then-b3sum baseline is absent".into());
    }
    if let Some(a) = &rates.apply {
        let bound = if p.apply_only[2].median() > p.copy_only[2].median() {
            format!(
                "; with {} logs of {} that makes the apply side the longer one even at 3x the \
                 copy rate",
                data.logs,
                phases::size_label(data.log_size)
            )
        } else {
            String::new()
        };
        notes.push(format!(
            "apply-only costs {:.0} ms per log on top of the restore rate (apply-only starts from \
             copies an earlier run verified, so each is hashed before its restore; the round \
             trip; the simulator's state writes after the modelled time){bound}",
            a.seconds_per_log * 1000.0,
        ));
    }
    if let Some(c) = &estimate_check {
        notes.push(format!(
            "plan estimate {:.2} s vs measured catch-up {:.2} s (restore = copy rate): {:+.0} %, {} 25 %",
            c.estimate_seconds,
            c.measured_seconds,
            c.error * 100.0,
            if c.within_25_percent { "within" } else { "NOT within" }
        ));
    }
    drop(world);
    work.close()
        .map_err(io("removing the benchmark's temporary folder"))?;
    Ok(BenchReport {
        command: String::new(),
        mode: format!("{:?}", spec.size).to_lowercase(),
        runs: spec.runs,
        machine: Machine::describe(),
        data: Some(data),
        figures,
        estimate_check,
        rates_file: None,
        rates: Some(rates),
        notes,
        seconds: started.elapsed().as_secs_f64(),
    })
}
