//! The dashboard in a real browser: Debian's Chromium driven through
//! chromedriver (WebDriver, fantoccini). Skipped with a SKIP line where the
//! browser is not installed, required in CI (`CI` set, or
//! `KEYGATE_BROWSER_TESTS=require`). One browser at a time; screenshots of
//! every page, light and dark, in `<target dir>/dashboard-shots/`.

mod checks;
mod dash;
mod driver;
mod harness;
mod selftest;

mod access;
mod create;
mod key_flow;
mod pages;

pub use harness::Browser;
