//! `cargo xtask plugin-gui [--screenshots]`: opens the plugin's real editor (the standalone app,
//! dummy audio backend) on a virtual X display (Xvfb, Mesa software OpenGL), reads it back with
//! OCR (tesseract) and drives it with xdotool, once at 100 % and once at 200 % scaling:
//!
//! 1. every label of the window is drawn as text, and the starting state shows (a window of
//!    empty glyph boxes reads as nothing and fails);
//! 2. typing the address of a local TCP listener and pressing Enter connects: the window says
//!    "connected to <address>", Peers 1, and the listener really accepted a connection;
//!    the listener then closes: "Disconnected: the server closed the connection" stays in view
//!    beside "Last attempt: Connection refused" of the retries;
//!    then the jitter buffer: choosing Auto and applying it with the address of a midisock server
//!    (`midisock serve`, which stamps what it sends when asked) that plays notes, the window
//!    shows the buffer's stats ("Jitter buffer: delay … late");
//! 3. a long, unresolvable address: the error shows, reason first, wrapped, with the end of the
//!    address and the attempt countdown still in view;
//! 4. choosing Server says "not applied yet" and changes nothing until the address is applied;
//!    then "listening on <address>", and a client connecting shows as "1 client";
//! 5. resized to 760×700 points, the window grows and every label still reads.
//!
//! **200 %** is set the way a Linux desktop sets it: the X resource `Xft.dpi: 192` (what GNOME,
//! KDE and Xfce write for 200 % scaling), which baseview reads when the window opens. On X11 it
//! takes precedence over a host's CLAP `gui.set_scale` / VST3 `setContentScaleFactor`, so it is
//! also what the editor does inside a DAW on such a desktop. The display keeps the resource only
//! if the X server does not reset when its last client leaves (`Xvfb -noreset`). The 200 % run
//! checks that the window and its text really are twice as large, then runs the same steps.
//!
//! Then the scale a host asks for: the same editor in a CLAP host (the `clap_gui_host` example:
//! `gui.create`, `gui.set_scale(2)`, `gui.get_size`, an X11 parent window, `set_parent`, `show`)
//! on a display without `Xft.dpi`: every label reads and the window and text are twice as large.
//!
//! `--screenshots` also writes four of the screenshots to `docs/` for the README; every run
//! keeps them all in `<target>/plugin-gui/{100,200,clap-host-200}/`.

use crate::env;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the test runs, as `(probe, Debian package)`: the virtual display, software OpenGL, the
/// runtime libraries of the editor, OCR, screenshots, input, and ALSA's headers for the
/// standalone app's audio backends.
const PACKAGES: &[(&str, &str)] = &[
    ("command -v Xvfb", "xvfb"),
    ("ls /usr/lib/*/dri/swrast_dri.so", "libgl1-mesa-dri"),
    ("ls /usr/lib/*/libGL.so.1", "libgl1"),
    ("ls /usr/lib/*/libX11.so.6", "libx11-6"),
    ("command -v xdotool", "xdotool"),
    ("command -v xrdb", "x11-xserver-utils"),
    ("command -v tesseract", "tesseract-ocr"),
    ("ls /usr/share/tesseract-ocr/*/tessdata/eng.traineddata", "tesseract-ocr-eng"),
    ("command -v import", "imagemagick"),
    ("pkg-config --exists alsa", "libasound2-dev"),
    ("pkg-config --version", "pkg-config"),
];

/// Every wait ends after this long (debug build, software GL and OCR on a busy 2-core machine).
const DEADLINE: Duration = Duration::from_secs(60);

/// OCR reads text best at about twice the size of 100 % UI text: screenshots are enlarged by
/// this over the editor's scale before OCR.
const OCR_TEXT_SCALE: f64 = 2.0;

/// The labels the editor always shows.
const LABELS: &[&str] = &[
    "midisock",
    "Connection",
    "Mode",
    "Client (connect)",
    "Server (listen)",
    "Address",
    "Token",
    "TLS CA file",
    "TLS name",
    "Jitter buffer",
    "Fixed",
    "Auto",
    "Apply",
    "Revert",
    "MIDI",
    "Direction",
    "Send",
    "Receive",
    "Both",
    "Thru",
    "track input also to the track output",
    "Channel",
    "All channels",
    "Status",
    "Peers",
    "Sent",
    "Received",
    "Dropped",
];

/// The editor's width when it opens, in logical points (the plugin's `editor::DEFAULT_SIZE`).
const EDITOR_WIDTH: f64 = 480.0;

const LONG_HOST: &str = "a-deliberately-long-host-name-that-does-not-exist-anywhere-at-all.invalid";

pub fn run(args: &[String]) -> Result<(), String> {
    let screenshots = match args {
        [] => false,
        [flag] if flag == "--screenshots" => true,
        other => return Err(format!("usage: cargo xtask plugin-gui [--screenshots], got {other:?}")),
    };
    env::ensure_debian_packages(PACKAGES)?;
    env::run(Command::new(cargo()).current_dir(env::repo_root()).args([
        "build",
        "-p",
        "midisock-plugin",
        "--features",
        "standalone",
        "--bin",
        "midisock-standalone",
    ]))?;
    // The midisock server the jitter-buffer step connects to.
    env::run(Command::new(cargo()).current_dir(env::repo_root()).args(["build", "-p", "midisock-cli"]))?;
    let cli = env::target_dir().join("debug").join("midisock");
    let app = env::target_dir().join("debug").join("midisock-standalone");
    let out = env::target_dir().join("plugin-gui");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut text_width_100 = 0.0;
    for scale in [1.0, 2.0] {
        let percent = (scale * 100.0) as u32;
        eprintln!("xtask: plugin-gui: the editor at {percent} % (Xft.dpi {})", 96.0 * scale);
        let display = VirtualDisplay::start(Some(scale))?;
        let editor = Editor::open(&app, &display, scale, out.join(percent.to_string()))?;
        let start = check_editor(&editor, &cli)?;
        if scale == 1.0 {
            text_width_100 = label_width(&start)?;
        } else {
            check_twice_as_large(&start, text_width_100, "the desktop's 200 % (Xft.dpi 192)")?;
        }
    }

    // The scale a host asks for: the CLAP GUI sequence with set_scale(2), on a display without
    // Xft.dpi (which would take precedence).
    eprintln!("xtask: plugin-gui: the editor in a CLAP host that asks for 200 %");
    crate::bundle::run(&["midisock-plugin".into(), "--features".into(), "assert_process_allocs".into()])?;
    env::run(Command::new(cargo()).current_dir(env::repo_root()).args([
        "build",
        "-p",
        "midisock-plugin",
        "--example",
        "clap_gui_host",
    ]))?;
    let host = env::target_dir().join("debug").join("examples").join("clap_gui_host");
    let clap = env::target_dir().join("bundled").join("midisock.clap");
    let display = VirtualDisplay::start(None)?;
    let editor = Editor::open_in_clap_host(&host, &clap, &display, 2.0, out.join("clap-host-200"))?;
    let ocr = editor.wait_for("every label in the CLAP host's window", "editor", |ocr| {
        LABELS.iter().all(|label| ocr.contains(label)) && ocr.contains("idle: the host has not started the plugin")
    })?;
    check_twice_as_large(&ocr, text_width_100, "a CLAP host's set_scale(2)")?;
    drop(editor);

    if screenshots {
        let docs = env::repo_root().join("docs");
        for (percent, shot, name) in [
            ("100", "jitter", "plugin-gui-connected.png"),
            ("100", "error", "plugin-gui-error.png"),
            ("100", "server", "plugin-gui-server.png"),
            ("200", "error", "plugin-gui-error-200.png"),
        ] {
            let from = out.join(percent).join(format!("{shot}.png"));
            let to = docs.join(name);
            std::fs::copy(&from, &to)
                .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
            eprintln!("xtask: wrote {}", to.display());
        }
    }
    eprintln!(
        "xtask: plugin-gui: at 100 % and 200 % the editor draws its text, connects, shows errors and serves; \
         screenshots in {}",
        out.display()
    );
    Ok(())
}

/// The summed width of three labels, in window pixels.
fn label_width(ocr: &Ocr) -> Result<f64, String> {
    ["Address", "Direction", "Received"]
        .iter()
        .map(|label| ocr.word(label).map(|w| w.width).ok_or(format!("no {label:?} label")))
        .sum()
}

/// The window (and its text) is twice as large as at 100 %: a window that ignored the scale
/// would pass every other check at 100 % size.
fn check_twice_as_large(ocr: &Ocr, label_width_100: f64, how: &str) -> Result<(), String> {
    let ratio = label_width(ocr)? / label_width_100;
    if !(1.8..=2.2).contains(&ratio) || ocr.width < 2.0 * EDITOR_WIDTH - 1.0 {
        return Err(format!(
            "the editor at {how} is not twice as large: its labels are {ratio:.2}× as wide as at 100 %, the window \
             {} px wide (want ≥ {} px)",
            ocr.width,
            2.0 * EDITOR_WIDTH
        ));
    }
    eprintln!(
        "xtask: plugin-gui: at {how} the labels are {ratio:.2}× as wide as at 100 %, the window {} px wide",
        ocr.width
    );
    Ok(())
}

/// Runs the steps; returns what it read at the start.
fn check_editor(editor: &Editor, cli: &Path) -> Result<Ocr, String> {
    // 1. Text is drawn: every label, and the state of the default address.
    let start = editor.wait_for("every label and the starting state", "start", |ocr| {
        LABELS.iter().all(|label| ocr.contains(label))
            && ocr.contains("127.0.0.1:8080")
            && ["could not connect", "connecting to", "connected to"].iter().any(|s| ocr.contains(s))
    })?;

    // 2. Connect to a listener by typing its address.
    let mut listener = Listener::start()?;
    let address = format!("127.0.0.1:{}", listener.port);
    editor.type_into("Address", &address)?;
    editor.wait_for("connected to the listener", "connected", |ocr| {
        ocr.contains(&format!("connected to {address}")) && ocr.contains("Peers 1") && listener.accepted() >= 1
    })?;

    // 2b. The server goes away: why the connection ended stays in view next to the failing
    //     attempts that follow (they must not overwrite it).
    listener.close();
    editor.wait_for("the reason for the disconnect beside the failed attempts", "disconnected", |ocr| {
        ocr.contains("Disconnected: the server closed the connection")
            && ocr.contains("Last attempt: Connection refused")
            && ocr.contains("could not connect (")
    })?;

    // 2c. The jitter buffer: Auto, applied with the address of a midisock server that plays
    //     notes; it stamps them because the plugin asks, and the window shows the buffer's stats.
    let serve = Serve::start(cli)?;
    editor.click_on("Auto")?;
    editor.type_into("Address", &serve.address)?;
    editor.wait_for("the jitter buffer's stats", "jitter", |ocr| {
        ocr.contains(&format!("connected to {}", serve.address))
            && ocr.contains("Jitter buffer: delay")
            && ocr.contains("late")
    })?;
    drop(serve);

    // 3. A long address that cannot resolve: the reason, the whole address and the retry timing.
    editor.type_into("Address", &format!("{LONG_HOST}:5004"))?;
    editor.wait_for("the resolve error, reason first and wrapped", "error", |ocr| {
        ocr.contains("Last attempt:")
            && ocr.contains("cannot resolve host")
            // The end of the long name, wrapped into view (OCR may drop the dot before "invalid").
            && ocr.contains("exist-anywhere-at-al")
            && ocr.contains("invalid")
            && ocr.contains("next attempt in")
            && ocr.contains("could not connect (")
    })?;

    // 4. Server mode: nothing changes before Apply; then listening, and a client shows.
    editor.click_on("Server")?;
    editor.wait_for("the pending change", "pending", |ocr| {
        ocr.contains("changed, not applied yet")
            && ocr.contains("TLS cert")
            && ocr.contains("TLS key")
            && ocr.contains("Allow")
            && ocr.contains("could not connect (")
            && !ocr.contains("listening")
    })?;
    let port = free_port()?;
    let address = format!("127.0.0.1:{port}");
    editor.type_into("Address", &address)?;
    editor.wait_for("listening", "listening", |ocr| ocr.contains(&format!("listening on {address}, 0 clients")))?;
    let _client = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("cannot connect to {address}: {e}"))?;
    editor.wait_for("the client", "server", |ocr| {
        ocr.contains(&format!("listening on {address}, 1 client")) && ocr.contains("Refused")
    })?;

    // 5. The window follows a resize (as a host or the corner grip asks) and still reads whole.
    editor.xdotool(&["windowsize", &editor.window, &px(760.0, editor.scale), &px(700.0, editor.scale)])?;
    editor.wait_for("every label after a resize", "resized", |ocr| {
        ocr.width >= 740.0 * editor.scale
            && ["Mode", "Address", "Token", "TLS cert", "TLS key", "Allow", "Direction", "Thru", "Channel", "Peers"]
                .iter()
                .all(|label| ocr.contains(label))
    })?;
    Ok(start)
}

/// Xvfb on a display number it picks itself, with the desktop's scale as `Xft.dpi`; stopped on
/// drop.
struct VirtualDisplay {
    child: Child,
    name: String,
}

impl VirtualDisplay {
    /// `scale`: the desktop's scale, as `Xft.dpi`; `None` leaves it unset.
    fn start(scale: Option<f64>) -> Result<VirtualDisplay, String> {
        // `-noreset`: otherwise the server resets when xrdb (its only client) leaves, and the
        // reset clears the resources.
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-noreset", "-screen", "0", "2048x1536x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start Xvfb: {e}"))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("Xvfb has no stdout")?;
        BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("Xvfb: {e}"))?;
        let number = line.trim();
        if number.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            return Err("Xvfb did not report its display number".into());
        }
        let display = VirtualDisplay { name: format!(":{number}"), child };
        if let Some(scale) = scale {
            display.set_dpi((96.0 * scale).round() as u32)?;
        }
        Ok(display)
    }

    /// Sets `Xft.dpi` (96 per 100 %) and checks that the server kept it.
    fn set_dpi(&self, dpi: u32) -> Result<(), String> {
        let resource = format!("Xft.dpi: {dpi}\n");
        // `-nocpp`: xrdb runs its input through cpp by default, which Debian does not install
        // with it (xrdb then sets nothing and still exits 0).
        let mut xrdb = Command::new("xrdb")
            .args(["-nocpp", "-merge"])
            .env("DISPLAY", &self.name)
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run xrdb: {e}"))?;
        let written = xrdb.stdin.take().ok_or("xrdb has no stdin")?.write_all(resource.as_bytes());
        let status = xrdb.wait().map_err(|e| format!("xrdb: {e}"))?;
        written.map_err(|e| format!("cannot write to xrdb: {e}"))?;
        if !status.success() {
            return Err(format!("xrdb -merge failed ({status})"));
        }
        let query = Command::new("xrdb")
            .arg("-query")
            .env("DISPLAY", &self.name)
            .output()
            .map_err(|e| format!("cannot run xrdb: {e}"))?;
        let resources = String::from_utf8_lossy(&query.stdout);
        if !resources.lines().any(|line| line.split_whitespace().eq(["Xft.dpi:", &dpi.to_string()])) {
            return Err(format!("the X server did not keep Xft.dpi: {dpi}; xrdb -query says:\n{resources}"));
        }
        Ok(())
    }
}

impl Drop for VirtualDisplay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The standalone app's editor window; the app is stopped on drop.
struct Editor {
    child: Child,
    display: String,
    window: String,
    /// Physical pixels per logical point.
    scale: f64,
    /// Where this run's screenshots go.
    dir: PathBuf,
}

impl Editor {
    fn open(app: &Path, display: &VirtualDisplay, scale: f64, dir: PathBuf) -> Result<Editor, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let child = Command::new(app)
            .args(["--backend", "dummy"])
            .env("DISPLAY", &display.name)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdout(Stdio::null())
            .stderr(log_file(&dir.join("app.log"))?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", app.display()))?;
        let mut editor = Editor { child, display: display.name.clone(), window: String::new(), scale, dir };
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = editor.child.try_wait() {
                return Err(format!("the standalone app exited before showing its window ({status})"));
            }
            let found = editor.xdotool(&["search", "--onlyvisible", "--name", "^midisock$"]).unwrap_or_default();
            if let Some(id) = found.split_whitespace().next() {
                editor.window = id.to_string();
                return Ok(editor);
            }
            if start.elapsed() > DEADLINE {
                return Err(format!(
                    "the editor window did not appear (the app's log: {})",
                    editor.dir.join("app.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The editor inside the `clap_gui_host` example (a CLAP host asking for `scale`).
    fn open_in_clap_host(
        host: &Path,
        clap: &Path,
        display: &VirtualDisplay,
        scale: f64,
        dir: PathBuf,
    ) -> Result<Editor, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut child = Command::new(host)
            .arg(clap)
            .arg(scale.to_string())
            .env("DISPLAY", &display.name)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdout(Stdio::piped())
            .stderr(log_file(&dir.join("host.log"))?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", host.display()))?;
        // "window 0x… size W×H", once the editor is shown.
        let stdout = child.stdout.take().ok_or("the host has no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(DEADLINE).unwrap_or_default();
        let window = line.split_whitespace().nth(1).filter(|_| line.starts_with("window ")).map(str::to_string);
        let editor =
            Editor { child, display: display.name.clone(), window: window.clone().unwrap_or_default(), scale, dir };
        match window {
            Some(_) => Ok(editor),
            None => Err(format!(
                "the CLAP host did not show the editor (it said {line:?}; its log: {})",
                editor.dir.join("host.log").display()
            )),
        }
    }

    fn xdotool(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .map_err(|e| format!("cannot run xdotool: {e}"))?;
        if !output.status.success() {
            return Err(format!("xdotool {args:?}: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Screenshots the window into `<dir>/<name>.png` and reads it.
    fn read(&self, name: &str) -> Result<Ocr, String> {
        let png = self.dir.join(format!("{name}.png"));
        let status = Command::new("import")
            .args(["-window", &self.window])
            .arg(&png)
            .env("DISPLAY", &self.display)
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run import: {e}"))?;
        if !status.success() {
            return Err(format!("import could not screenshot the window ({status})"));
        }
        let big = self.dir.join(format!("{name}.ocr.png"));
        let upscale = self.ocr_upscale();
        let resize = format!("{}%", upscale * 100.0);
        let status = Command::new("convert")
            .arg(&png)
            .args(["-resize", &resize])
            .arg(&big)
            .status()
            .map_err(|e| format!("cannot run convert: {e}"))?;
        if !status.success() {
            return Err(format!("convert could not enlarge {} ({status})", png.display()));
        }
        let output = Command::new("tesseract")
            .arg(&big)
            .args(["-", "tsv"])
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run tesseract: {e}"))?;
        let _ = std::fs::remove_file(&big);
        if !output.status.success() {
            return Err(format!("tesseract failed ({})", output.status));
        }
        Ok(Ocr::from_tsv(&String::from_utf8_lossy(&output.stdout), upscale))
    }

    /// How much a screenshot is enlarged for OCR.
    fn ocr_upscale(&self) -> f64 {
        OCR_TEXT_SCALE / self.scale
    }

    /// Screenshots until `check` passes (the last screenshot stays as `<name>.png`).
    fn wait_for(&self, what: &str, name: &str, check: impl Fn(&Ocr) -> bool) -> Result<Ocr, String> {
        let start = Instant::now();
        loop {
            // A window being mapped or resized cannot always be read at once: that is a "not yet".
            let read = self.read(name);
            if let Ok(ocr) = &read {
                if check(ocr) {
                    return read;
                }
            }
            if start.elapsed() > DEADLINE {
                let what_it_read = match read {
                    Ok(ocr) => ocr.text,
                    Err(e) => e,
                };
                return Err(format!(
                    "the editor never showed {what}; it read:\n{what_it_read}\n(screenshot: {})",
                    self.dir.join(format!("{name}.png")).display()
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Clicks the word `word` as it reads now.
    fn click_on(&self, word: &str) -> Result<(), String> {
        let ocr = self.read("click")?;
        let w = ocr.word(word).ok_or_else(|| format!("no {word:?} in the editor: it read\n{}", ocr.text))?;
        self.click((w.x + w.width / 2.0) as i64, (w.y + w.height / 2.0) as i64)
    }

    /// Replaces the text of the field right of `label` with `text` and presses Enter (applies).
    fn type_into(&self, label: &str, text: &str) -> Result<(), String> {
        let ocr = self.read("click")?;
        let w = ocr.word(label).ok_or_else(|| format!("no {label:?} in the editor: it read\n{}", ocr.text))?;
        // The field starts a few points right of the label column and is ~150 points wide at least.
        self.click((w.x + w.width + 120.0 * self.scale) as i64, (w.y + w.height / 2.0) as i64)?;
        // Real (XTEST) key presses, to the window under the pointer: synthetic events sent to a
        // window can arrive with a stale modifier state.
        self.xdotool(&["key", "--clearmodifiers", "ctrl+a"])?;
        self.xdotool(&["type", "--delay", "20", text])?;
        self.xdotool(&["key", "Return"])?;
        Ok(())
    }

    fn click(&self, x: i64, y: i64) -> Result<(), String> {
        let (x, y) = (x.to_string(), y.to_string());
        self.xdotool(&["mousemove", "--window", &self.window, &x, &y, "click", "1"])?;
        Ok(())
    }
}

impl Drop for Editor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One word tesseract read, in window pixels.
struct Word {
    text: String,
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

/// What tesseract read from a screenshot: the words with their boxes, and the text line by line.
struct Ocr {
    words: Vec<Word>,
    text: String,
    /// The screenshot's width in pixels.
    width: f64,
}

impl Ocr {
    /// Parses tesseract's TSV (level, page, block, par, line, word, left, top, width, height,
    /// conf, text).
    fn from_tsv(tsv: &str, upscale: f64) -> Ocr {
        let mut words = Vec::new();
        let mut text = String::new();
        let mut last_line = None;
        let mut width = 0.0;
        for row in tsv.lines().skip(1) {
            let cells: Vec<&str> = row.split('\t').collect();
            if cells.len() >= 10 && cells[0] == "1" {
                width = cells[8].parse::<f64>().unwrap_or(0.0) / upscale;
            }
            if cells.len() < 12 || cells[0] != "5" || cells[11].trim().is_empty() {
                continue;
            }
            let line = (cells[2], cells[3], cells[4]);
            if last_line.is_some_and(|last| last != line) {
                text.push('\n');
            } else if last_line.is_some() {
                text.push(' ');
            }
            last_line = Some(line);
            text.push_str(cells[11]);
            let number = |i: usize| cells[i].parse::<f64>().unwrap_or(0.0) / upscale;
            words.push(Word {
                text: cells[11].to_string(),
                x: number(6),
                y: number(7),
                width: number(8),
                height: number(9),
            });
        }
        Ocr { words, text, width }
    }

    /// True when `phrase` appears on one line, ignoring case and spaces (OCR reads "CA file" as
    /// "CAFile" at times).
    fn contains(&self, phrase: &str) -> bool {
        let phrase = squash(phrase);
        self.text.lines().any(|line| squash(line).contains(&phrase))
    }

    fn word(&self, text: &str) -> Option<&Word> {
        self.words.iter().find(|w| w.text == text)
    }
}

fn squash(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// A TCP listener on a free loopback port that counts the connections it accepts (a plain TCP
/// peer is all a client needs to connect), until [`Listener::close`].
struct Listener {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    fn start() -> Result<Listener, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen on loopback: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopped) = (Arc::clone(&accepted), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopped.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        counter.fetch_add(1, Ordering::AcqRel);
                        held.push(stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            // Dropping `held` and `listener` closes the connections and the port.
        });
        Ok(Listener { port, accepted, stop, thread: Some(thread) })
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Acquire)
    }

    /// Closes every connection and stops listening (the port then refuses connections).
    fn close(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.close();
    }
}

/// `midisock serve 127.0.0.1:0` playing a note every 40 ms to its clients; stopped on drop.
struct Serve {
    child: Child,
    address: String,
    stop: Arc<AtomicBool>,
    feeder: Option<std::thread::JoinHandle<()>>,
}

impl Serve {
    fn start(cli: &Path) -> Result<Serve, String> {
        let mut child = Command::new(cli)
            .args(["serve", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", cli.display()))?;
        let mut stderr = BufReader::new(child.stderr.take().ok_or("midisock serve has no stderr")?);
        // "midisock: serving on 127.0.0.1:PORT (…)"
        let mut line = String::new();
        let _ = stderr.read_line(&mut line);
        let address = line.split("serving on ").nth(1).and_then(|rest| rest.split_whitespace().next());
        let Some(address) = address.map(str::to_string) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("midisock serve did not say where it listens: {line:?}"));
        };
        // Its later messages (clients coming and going) must not fill the pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let mut stdin = child.stdin.take().ok_or("midisock serve has no stdin")?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let feeder = std::thread::spawn(move || {
            while !stopped.load(Ordering::Acquire) {
                for line in ["note_on channel=0 note=60 velocity=64", "note_off channel=0 note=60 velocity=0"] {
                    if writeln!(stdin, "{line}").and_then(|()| stdin.flush()).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Ok(Serve { child, address, stop, feeder: Some(feeder) })
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(feeder) = self.feeder.take() {
            let _ = feeder.join();
        }
    }
}

/// `points` logical points in pixels at `scale`, as xdotool takes them.
fn px(points: f64, scale: f64) -> String {
    ((points * scale).round() as i64).to_string()
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen on loopback: {e}"))?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn log_file(path: &Path) -> Result<std::fs::File, String> {
    std::fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
