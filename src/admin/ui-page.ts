// The status page's HTML shell and stylesheet (the page itself is drawn by src/ui/main.ts).

const css = `
:root{--bg:#f5f6f8;--panel:#fff;--ink:#1b2430;--muted:#5f6b7a;--line:#e2e6ec;--accent:#2f6fdf;--ok:#1f9d55;--warn:#c98a04;--bad:#d1383d;--idle:#98a2b3;--band:rgba(47,111,223,.18);--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
*{box-sizing:border-box}
html,body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{position:sticky;top:0;z-index:5;display:flex;gap:16px;align-items:center;padding:10px 20px;background:#141b26;color:#e8edf4}
header h1{font-size:17px;margin:0;font-weight:650;letter-spacing:.2px}
header .meta{display:flex;gap:14px;color:#aab4c3;font-size:12.5px;flex-wrap:wrap}
header .meta b{color:#e8edf4;font-weight:550}
header .spacer{flex:1}
.live{display:inline-flex;align-items:center;gap:6px}
.live i{width:8px;height:8px;border-radius:50%;background:var(--ok);box-shadow:0 0 0 3px rgba(31,157,85,.25)}
.live.down i{background:var(--bad);box-shadow:0 0 0 3px rgba(209,56,61,.3)}
button,select,input{font:inherit}
button{border:1px solid var(--line);background:#fff;color:var(--ink);border-radius:6px;padding:5px 11px;cursor:pointer}
button:hover:not(:disabled){border-color:var(--accent);color:var(--accent)}
button:disabled{opacity:.45;cursor:not-allowed}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
button.primary:hover:not(:disabled){filter:brightness(1.08);color:#fff}
button.primary:disabled{background:#fff;color:var(--ink);border-color:var(--line)}
button.danger{border-color:#f0c2c4;color:var(--bad)}
button.danger.confirm{background:var(--bad);color:#fff}
header button{background:transparent;color:#e8edf4;border-color:#3a4556}
main{display:grid;grid-template-columns:minmax(0,1.15fr) minmax(480px,1fr);gap:16px;padding:16px 20px;align-items:start}
section.panel{background:var(--panel);border:1px solid var(--line);border-radius:10px;overflow:hidden}
.panel h2{font-size:13px;text-transform:uppercase;letter-spacing:.6px;color:var(--muted);margin:0;padding:12px 14px;border-bottom:1px solid var(--line);display:flex;gap:10px;align-items:center}
.panel h2 .count{text-transform:none;letter-spacing:0;color:var(--ink);font-weight:500}
.toolbar{display:flex;gap:8px;padding:10px 14px;border-bottom:1px solid var(--line);align-items:center;flex-wrap:wrap}
.toolbar input[type=search]{flex:1;min-width:160px;padding:6px 10px;border:1px solid var(--line);border-radius:6px}
.chip{border-radius:999px;padding:3px 10px;font-size:12.5px}
.chip.on{background:var(--ink);color:#fff;border-color:var(--ink)}
.scroll{max-height:62vh;overflow:auto}
.column{display:flex;flex-direction:column;gap:16px;min-width:0}
table{border-collapse:collapse;width:100%}
th{position:sticky;top:0;background:#fafbfc;text-align:left;font-weight:600;font-size:12px;color:var(--muted);padding:7px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
td{padding:7px 10px;border-bottom:1px solid #eef1f4;vertical-align:middle}
tr.route{cursor:pointer}
tr.route:hover,tr.route:focus{background:#f7f9fc;outline:none}
tr.route.selected{background:#eaf1fe}
.name{font-weight:600}
.sub{color:var(--muted);font-size:12px;font-family:var(--mono)}
.badge{display:inline-block;border-radius:5px;padding:1px 7px;font-size:12px;font-weight:550;white-space:nowrap;background:#eef1f5;color:#384456}
.badge.canary{background:#fff3d6;color:#8a5a00}.badge.ab{background:#efe6ff;color:#5b2fb3}.badge.shadow{background:#e6eefc;color:#2a55a8}
.phase-healthy,.phase-promotable,.phase-promoted{background:#ddf5e6;color:#146c3b}
.phase-collecting{background:#eef1f5;color:#4a5566}
.phase-rolled_back,.phase-breach{background:#fde2e3;color:#a4242a}
.phase-paused{background:#fff1cc;color:#7a5200}
.phase-awaiting_approval{background:#ffe7c7;color:#8a4700;box-shadow:0 0 0 1px #f5b464 inset}
.phase-inactive{background:#f1f2f4;color:#7a8494}
.flag-live{background:#ddf5e6;color:#146c3b}.flag-stale,.flag-unauthorized,.flag-missing{background:#fde2e3;color:#a4242a}.flag-bootstrap{background:#fff1cc;color:#7a5200}
.split{display:flex;height:10px;border-radius:5px;overflow:hidden;background:#dde3ea;min-width:90px}
.split span{display:block;height:100%}
.split .champion{background:#7b8aa0}.split .canary{background:#e8a400}.split .ab{background:#8a5cf0}
.splitlabel{font-size:11.5px;color:var(--muted);margin-top:3px;font-family:var(--mono)}
.dots{display:flex;gap:4px}
.dot{width:11px;height:11px;border-radius:50%;background:var(--idle)}
.dot.healthy,.dot.within{background:var(--ok)}.dot.collecting{background:#c9d1dc}.dot.breach{background:var(--bad)}
.empty{padding:30px;text-align:center;color:var(--muted)}
.detail{padding:14px;display:flex;flex-direction:column;gap:14px}
.detail .title{display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.detail .title h3{margin:0;font-size:18px}
.actions{display:flex;gap:8px;flex-wrap:wrap;align-items:center}
.actions .setsplit{display:flex;gap:6px;align-items:center;padding-left:8px;border-left:1px solid var(--line)}
.actions input[type=number]{width:64px;padding:4px 6px;border:1px solid var(--line);border-radius:6px}
.actions select{padding:4px 6px;border:1px solid var(--line);border-radius:6px;background:#fff}
.readonly{font-size:12.5px;color:var(--muted);background:#f6f7f9;border:1px dashed var(--line);border-radius:6px;padding:6px 10px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:10px}
.chart{border:1px solid var(--line);border-radius:8px;padding:8px 10px 4px}
.chart .head{display:flex;gap:8px;align-items:baseline;justify-content:space-between;font-size:12.5px}
.chart .head b{font-size:13px}
.chart .why{color:var(--muted);font-size:12px;margin:2px 0 4px}
.chart svg{width:100%;height:auto;display:block}
.chart svg text{font:10px var(--mono);fill:var(--muted)}
.kv{display:grid;grid-template-columns:auto 1fr;gap:3px 14px;font-size:13px}
.kv dt{color:var(--muted)}.kv dd{margin:0}
.small{font-size:12.5px}
.mini td,.mini th{padding:4px 8px;font-size:12.5px}
.report{border:1px solid var(--line);border-radius:8px;padding:8px 10px;font-size:13px}
.report.ready{border-color:#9fd9b5;background:#f3fbf6}
.events{max-height:420px;overflow:auto}
.event{display:grid;grid-template-columns:70px 110px 1fr;gap:8px;padding:7px 14px;border-bottom:1px solid #eef1f4;font-size:12.5px;align-items:baseline}
.event time{color:var(--muted);font-family:var(--mono)}
.event .what{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.event.new{animation:flash 1.6s ease-out}
@keyframes flash{from{background:#fff5c2}to{background:transparent}}
.a-rollback,.a-breach{background:#fde2e3;color:#a4242a}.a-promote,.a-approve{background:#ddf5e6;color:#146c3b}.a-pause,.a-approval\\.needed{background:#fff1cc;color:#7a5200}
#toast{position:fixed;right:20px;bottom:20px;display:flex;flex-direction:column;gap:8px;z-index:10}
#toast div{background:#141b26;color:#fff;padding:10px 14px;border-radius:8px;max-width:440px;box-shadow:0 6px 20px rgba(0,0,0,.2);font-size:13px}
#toast div.error{background:#a4242a}
dialog{border:1px solid var(--line);border-radius:10px;padding:18px;width:380px}
dialog input{width:100%;padding:7px 9px;border:1px solid var(--line);border-radius:6px;margin:8px 0 12px;font-family:var(--mono)}
dialog .row{display:flex;gap:8px;justify-content:flex-end}
@media (max-width:1100px){main{grid-template-columns:1fr}.scroll{max-height:none}}
`;

/** The page: an empty shell that main.js fills; no inline script, so the Content-Security-Policy forbids all. */
export function statusPageHtml(version: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchyard status</title>
<link rel="icon" href="data:,">
<style>${css}</style>
<script type="module" src="ui/assets/main.js"></script>
</head>
<body>
<header>
  <h1>Switchyard</h1>
  <div class="meta" id="meta"><span>v${version}</span></div>
  <div class="spacer"></div>
  <span class="live" id="live"><i></i><span>connecting…</span></span>
  <span id="who"></span>
  <button id="token-button" type="button">Enter token</button>
</header>
<main>
  <div class="column">
  <section class="panel" id="routes-panel">
    <h2>Routes <span class="count" id="route-count"></span></h2>
    <div class="toolbar">
      <input type="search" id="filter" placeholder="Filter routes by name, path or model" aria-label="Filter routes">
      <button type="button" class="chip on" data-show="all">All</button>
      <button type="button" class="chip" data-show="attention">Needs attention</button>
    </div>
    <div class="scroll">
      <table id="routes">
        <thead><tr><th>Route</th><th>Champion</th><th>Challengers</th><th>Live split</th><th>Phase</th><th>Guardrails</th><th>Flag</th></tr></thead>
        <tbody></tbody>
      </table>
      <div class="empty" id="routes-empty" hidden>No route matches.</div>
    </div>
  </section>
  <section class="panel">
    <h2>Audit timeline <button type="button" class="chip" id="events-scope"></button></h2>
    <div class="events" id="events"><div class="empty">No events yet.</div></div>
  </section>
  </div>
  <section class="panel" id="detail-panel">
    <h2>Route</h2>
    <div class="empty" id="detail-empty">Select a route to see its guardrails, reports and controls.</div>
    <div class="detail" id="detail" hidden></div>
  </section>
</main>
<dialog id="token-dialog">
  <form method="dialog" id="token-form">
    <b>Admin token</b>
    <div class="small">Changes (split, pause, resume, roll back, promote, approve) need a token from
    SWITCHYARD_ADMIN_TOKEN or SWITCHYARD_ADMIN_TOKENS. It is kept in this tab only (sessionStorage).</div>
    <input type="password" id="token-input" autocomplete="off" placeholder="token" aria-label="Admin token">
    <div class="small" id="token-error" style="color:var(--bad)"></div>
    <div class="row"><button type="button" id="token-cancel">Cancel</button><button type="submit" class="primary" id="token-save">Use token</button></div>
  </form>
</dialog>
<div id="toast" role="status" aria-live="polite"></div>
</body>
</html>`;
}
