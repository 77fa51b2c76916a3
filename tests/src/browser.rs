//! A real headless Chromium driven over the W3C WebDriver protocol (plain HTTP + JSON to
//! Debian's `chromedriver`), for the browser tests of the web UIs. `.ci/run` installs
//! `chromium`, `chromium-driver` and `fonts-noto-cjk`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The keys WebDriver sends for Enter, Tab, ↓ and the function keys the till uses.
pub const ENTER: &str = "\u{E007}";
pub const TAB: &str = "\u{E004}";
pub const DOWN: &str = "\u{E015}";
pub const F2: &str = "\u{E032}";
pub const F8: &str = "\u{E038}";

pub struct Browser {
    driver: Child,
    agent: ureq::Agent,
    session: String,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (Chinese first, 1280×900).
    pub fn start() -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; .ci/run installs it)");
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build(),
        );
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while agent.get(format!("{base}/status")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=zh-CN"],
            },
        }}});
        let mut browser = Self {
            driver,
            agent,
            session: String::new(),
        };
        browser.session = format!("{base}/session");
        let answer = browser.call("POST", "", Some(caps));
        let id = answer["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_owned();
        browser.session = format!("{base}/session/{id}");
        browser
    }

    /// One WebDriver command; panics with WebDriver's message on an error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let answer = match body {
            Some(body) => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body.to_string().as_bytes()),
            None if method == "DELETE" => self.agent.delete(&url).call(),
            None => self.agent.get(&url).call(),
        };
        let mut answer = answer.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let text = answer.body_mut().read_to_string().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !answer.status().is_success() {
            panic!("{method} {path}: {}", value["value"]["message"]);
        }
        value["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn element(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_owned()
    }

    /// Types into the element (a field); `ENTER` at the end submits its form.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub fn clear(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/clear"), Some(json!({})));
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Makes the page's viewport `width` × `height` CSS pixels (a till's screen).
    pub fn resize(&self, width: u32, height: u32) {
        let rect = |w: i64, h: i64| {
            self.call(
                "POST",
                "/window/rect",
                Some(json!({"width": w, "height": h})),
            );
        };
        let (w, h) = (i64::from(width), i64::from(height));
        rect(w, h);
        let inner = self.script("return [window.innerWidth, window.innerHeight]");
        let (iw, ih) = (
            inner[0].as_i64().unwrap_or(w),
            inner[1].as_i64().unwrap_or(h),
        );
        rect(2 * w - iw, 2 * h - ih);
    }

    /// Runs `script` in the page and returns what it returns.
    pub fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The element's visible text ("" while it is hidden).
    pub fn text(&self, css: &str) -> String {
        let id = self.element(css);
        self.call("GET", &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the element is there and its text satisfies `ok`; panics after `seconds`
    /// with the text.
    pub fn wait_text(&self, css: &str, seconds: u64, ok: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        let exists = format!(
            "return document.querySelector({}) !== null",
            serde_json::to_string(css).unwrap_or_default()
        );
        loop {
            let text = match self.script(&exists) {
                Value::Bool(true) => self.text(css),
                _ => String::new(),
            };
            if ok(&text) {
                return text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(seconds),
                "{css} still says {text:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the page under `target/screenshots/<name>.png`; returns its path.
    pub fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let png = self.call("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("the screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.session).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
