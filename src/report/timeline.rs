//! The timeline of a run: when each copy, restore and step started and ended.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One bar of the timeline, in seconds from the start of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeSpan {
    /// `copy`, `apply` or `step`.
    pub lane: String,
    pub name: String,
    pub start: f64,
    pub end: f64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Collects spans from the copy workers, the applier and the steps.
#[derive(Debug)]
pub struct Timeline {
    origin: Instant,
    open: Mutex<HashMap<(String, String), f64>>,
    spans: Mutex<Vec<TimeSpan>>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline {
            origin: Instant::now(),
            open: Mutex::default(),
            spans: Mutex::default(),
        }
    }

    /// Seconds since the run started.
    pub fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    pub fn start(&self, lane: &str, name: &str) {
        let t = self.now();
        self.open
            .lock()
            .expect("timeline lock")
            .insert((lane.to_string(), name.to_string()), t);
    }

    /// Closes the span opened by [`Timeline::start`] (or a zero-length one if none was).
    pub fn end(&self, lane: &str, name: &str, ok: bool, detail: impl Into<String>) {
        let end = self.now();
        let start = self
            .open
            .lock()
            .expect("timeline lock")
            .remove(&(lane.to_string(), name.to_string()))
            .unwrap_or(end);
        self.spans.lock().expect("timeline lock").push(TimeSpan {
            lane: lane.to_string(),
            name: name.to_string(),
            start,
            end,
            ok,
            detail: detail.into(),
        });
    }

    pub fn spans(&self) -> Vec<TimeSpan> {
        let mut v = self.spans.lock().expect("timeline lock").clone();
        v.sort_by(|a, b| a.start.total_cmp(&b.start));
        v
    }
}
