/** The dashboard page's style sheet, served at /assets/app.css. System fonts; light and dark. */
export const PAGE_STYLE = String.raw`
:root {
  color-scheme: light dark;
  --bg: #f7f8fa; --fg: #1d2330; --muted: #5b6472; --card: #ffffff; --line: #d9dde3;
  --accent: #1f6feb; --ok: #2da44e; --bad: #cf222e; --warn: #9a6700; --warn-bg: #fff8c5;
  --error-bg: #ffebe9; --error-line: #ff8182;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --card: #161b22; --line: #30363d;
    --accent: #4493f8; --ok: #3fb950; --bad: #f85149; --warn: #d29922; --warn-bg: #2e2400;
    --error-bg: #3c1618; --error-line: #8e1519;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1.5rem; padding: 0.75rem 1.5rem; border-bottom: 1px solid var(--line); background: var(--card); }
header.top h1 { margin: 0; font-size: 1.25rem; }
header.top nav { display: flex; gap: 1rem; }
.session { margin-left: auto; display: flex; gap: 0.75rem; align-items: center; color: var(--muted); }
main { padding: 1rem 1.5rem 3rem; max-width: 78rem; }
a { color: var(--accent); }
h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; }
h3 { font-size: 1.05rem; margin: 0 0 0.75rem; display: flex; gap: 0.5rem; align-items: center; }
h4 { font-size: 0.95rem; margin: 1rem 0 0.4rem; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.muted { color: var(--muted); }
.badge { font-size: 0.75rem; font-weight: 500; padding: 0.05rem 0.45rem; border: 1px solid var(--line); border-radius: 1rem; color: var(--muted); }
.badge.warn, .warn { color: var(--warn); }
.error { background: var(--error-bg); border: 1px solid var(--error-line); padding: 0.6rem 0.8rem; border-radius: 6px; margin: 0.75rem 0; }
#content.stale .queue, #content.stale table { opacity: 0.55; }
.status { color: var(--muted); margin: 0.25rem 0 0; }
.queue { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.25rem; margin: 0.75rem 0 1rem; }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(7.5rem, 1fr)); gap: 0.5rem; margin: 0; }
.stat { border: 1px solid var(--line); border-radius: 6px; padding: 0.4rem 0.6rem; }
.stat dt { color: var(--muted); font-size: 0.85rem; }
.stat dd { margin: 0; font-size: 1.35rem; font-variant-numeric: tabular-nums; }
.stat-failed dd { color: var(--bad); }
.stat-completed dd { color: var(--ok); }
.chart { width: 100%; max-width: 36rem; height: 3rem; display: block; border-bottom: 1px solid var(--line); }
.chart .ok { fill: var(--ok); }
.chart .bad { fill: var(--bad); }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.3rem 0.6rem 0.3rem 0; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { color: var(--muted); font-weight: 500; }
td.n { font-variant-numeric: tabular-nums; }
td.example { color: var(--muted); max-width: 24rem; overflow-wrap: anywhere; }
td.progress { white-space: nowrap; }
progress { width: 7rem; vertical-align: middle; }
.state-done { color: var(--ok); }
button { font: inherit; padding: 0.25rem 0.7rem; border-radius: 6px; border: 1px solid var(--line); background: var(--card); color: var(--fg); cursor: pointer; }
button:hover { border-color: var(--accent); }
button:focus-visible, a:focus-visible, input:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
button.danger { background: var(--bad); border-color: var(--bad); color: #fff; }
button[disabled] { opacity: 0.6; cursor: default; }
#signin form { display: grid; gap: 0.5rem; max-width: 24rem; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.25rem; }
#signin input { font: inherit; padding: 0.4rem 0.5rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
#signin-error { color: var(--bad); min-height: 1.2em; margin: 0; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;
