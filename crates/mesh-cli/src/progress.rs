//! How a run shows its steps: spinners at a terminal, log lines elsewhere.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mesh_core::config::Config;
use mesh_core::dag::StepEvent;
use mesh_core::pipeline::Progress;

/// A spinner per running step; log lines are printed above the bars.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Progress for Bars {
    fn event(&self, step: &str, event: StepEvent<'_>) {
        let mut bars = self.bars.lock().expect("bars lock");
        let bar = bars.entry(step.to_string()).or_insert_with(|| {
            let b = self.multi.add(ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix:40} {msg} {elapsed}").expect("static template"),
            );
            b.set_prefix(step.to_string());
            b
        });
        match event {
            StepEvent::Started { attempt } => {
                bar.enable_steady_tick(Duration::from_millis(120));
                bar.set_message(if attempt > 1 {
                    format!("running (attempt {attempt})")
                } else {
                    "running".into()
                });
            }
            StepEvent::Retrying { attempt, error, wait } => bar.set_message(format!(
                "attempt {attempt} failed, retrying in {:.1}s: {error}",
                wait.as_secs_f64()
            )),
            StepEvent::Finished { ok } => bar.finish_with_message(if ok { "done" } else { "FAILED" }),
            StepEvent::Skipped => bar.finish_with_message("skipped"),
        }
    }
}

/// Writes log lines without tearing the progress bars.
#[derive(Clone)]
struct BarWriter(MultiProgress);

impl std::io::Write for BarWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .suspend(|| std::io::Write::write_all(&mut std::io::stderr(), buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Spinners at a terminal; elsewhere (CI, Step Functions, a pipe) one log line per step start,
/// retry and end, so a long run is never silent.
pub fn progress(multi: &MultiProgress) -> Arc<dyn Progress> {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Arc::new(Bars {
            multi: multi.clone(),
            bars: Mutex::new(BTreeMap::new()),
        })
    } else {
        Arc::new(Lines::default())
    }
}

#[derive(Default)]
struct Lines {
    started: Mutex<BTreeMap<String, Instant>>,
}

impl Progress for Lines {
    fn event(&self, step: &str, event: StepEvent<'_>) {
        let mut started = self.started.lock().expect("lines lock");
        match event {
            StepEvent::Started { attempt } => {
                started.insert(step.to_string(), Instant::now());
                tracing::info!(step, attempt, "step started");
            }
            StepEvent::Retrying { attempt, error, wait } => {
                tracing::warn!(
                    step,
                    attempt,
                    wait_s = wait.as_secs_f64(),
                    "step attempt failed, retrying: {error}"
                )
            }
            StepEvent::Finished { ok } => {
                let seconds = started.get(step).map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
                if ok {
                    tracing::info!(step, seconds, "step succeeded");
                } else {
                    tracing::error!(step, seconds, "step failed");
                }
            }
            StepEvent::Skipped => tracing::warn!(step, "step skipped: a step it depends on did not succeed"),
        }
    }
}

pub fn init_logging(cfg: &Config, bars: Option<MultiProgress>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&cfg.log_level.value).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = cfg.log_format.value == mesh_core::config::LogFormat::Json;
    // Colours only for a person at a terminal, never in CI logs or files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    let _ = match (bars, json) {
        (Some(m), false) => builder.compact().with_writer(move || BarWriter(m.clone())).try_init(),
        (Some(m), true) => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(move || BarWriter(m.clone()))
            .try_init(),
        (None, _) => {
            mesh_core::logging::init(&cfg.log_level.value, cfg.log_format.value);
            Ok(())
        }
    };
}
