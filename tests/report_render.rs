//! The HTML report renders in a real browser: headless Chromium draws the timeline.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{stderr, World};

fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in ["/usr/bin", "/usr/local/bin"] {
            let p = Path::new(dir).join(name);
            if p.exists() {
                return Some(p);
            }
        }
    }
    None
}

/// Counts the pixels close to `rgb` in a PNG.
fn count_color(png: &Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p.len() >= 3 && (0..3).all(|i| p[i].abs_diff(rgb[i]) <= 8))
        .count()
}

#[test]
fn the_failover_timeline_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var("LOGSHIP_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!("chromium is missing and LOGSHIP_REQUIRE_INTEROP=1");
        }
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
        return;
    };
    let w = World::new(12, 64 * 1024, |_| {});
    let report = w.dir.path().join("report");
    let out = w.run(&["failover", "--yes", "--report", report.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = report.join("failover.html");
    let shot = w.dir.path().join("shot.png");
    let profile = w.dir.path().join("profile");
    let status = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    // The apply bars (green) and the step bars (orange) are drawn.
    let green = count_color(&shot, [0x3a, 0xa3, 0x64]);
    let orange = count_color(&shot, [0xc9, 0x82, 0x2b]);
    assert!(green > 200, "apply bars not drawn ({green} pixels)");
    assert!(orange > 100, "step bars not drawn ({orange} pixels)");
}
