//! `GET /`: the tickets the sandbox received, newest first, so a person trying the demo sees them arrive.

use axum::extract::State;
use axum::response::Html;
use serde_json::Value;

use super::{Sandbox, tickets_for_page};

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(ticket: &Value, path: &[&str]) -> String {
    let mut v = ticket;
    for key in path {
        v = &v[*key];
    }
    escape(v.as_str().unwrap_or(""))
}

/// The active faults in words ("none" when off).
fn describe_faults(f: &super::Faults) -> String {
    let mut active = Vec::new();
    if f.error_rate > 0.0 {
        active.push(format!("{:.0}% of calls answer 500", f.error_rate * 100.0));
    }
    if f.rate_limit_rate > 0.0 {
        active.push(format!(
            "{:.0}% of calls answer 429 (Retry-After {} s)",
            f.rate_limit_rate * 100.0,
            f.retry_after_secs
        ));
    }
    if f.latency_ms > 0 {
        active.push(format!("{} ms added latency", f.latency_ms));
    }
    if f.rate_limit_burst_every_ms > 0 && f.rate_limit_burst_ms > 0 {
        active.push(format!(
            "every call answers 429 for {} ms of every {} ms (Retry-After {} s)",
            f.rate_limit_burst_ms, f.rate_limit_burst_every_ms, f.retry_after_secs
        ));
    }
    if f.timeout_after_commit_rate > 0.0 {
        active.push(format!(
            "{:.0}% of new tickets are stored, then the answer stalls {} s",
            f.timeout_after_commit_rate * 100.0,
            f.stall_secs
        ));
    }
    if active.is_empty() { "none (set them with POST /_sandbox/faults)".into() } else { active.join("; ") }
}

pub async fn index(State(sb): State<Sandbox>) -> Html<String> {
    let tickets = tickets_for_page(&sb).await;
    let faults = sb.faults().await;
    let c = sb.config();
    let mut rows = String::new();
    for (received, t) in &tickets {
        let description = text(t, &["initialDescription"]);
        rows.push_str(&format!(
            "<tr><td class=\"num\">#{id}</td><td class=\"when\">{received}</td><td>{company}</td>\
             <td>{board}<br><span class=\"muted\">{status} · {priority}</span></td>\
             <td><strong>{summary}</strong>{xref}{desc}</td></tr>\n",
            id = t["id"].as_i64().unwrap_or_default(),
            received = escape(received),
            company = text(t, &["company", "name"]),
            board = text(t, &["board", "name"]),
            status = text(t, &["status", "name"]),
            priority = text(t, &["priority", "name"]),
            summary = text(t, &["summary"]),
            xref = match text(t, &["externalXRef"]) {
                x if x.is_empty() => String::new(),
                x => format!("<div class=\"muted mono\">externalXRef: {x}</div>"),
            },
            desc = if description.is_empty() {
                String::new()
            } else {
                format!(
                    "<details><summary>Initial description</summary><div class=\"desc\">{description}</div></details>"
                )
            },
        ));
    }
    let table = if tickets.is_empty() {
        "<p class=\"empty\">No tickets yet. Create an integration in the Partner Dashboard with the details above; \
         tickets appear here as they arrive (the page refreshes every 5 seconds).</p>"
            .to_string()
    } else {
        format!(
            "<table><thead><tr><th>Ticket</th><th>Received (UTC)</th><th>Company</th><th>Board</th>\
             <th>Summary</th></tr></thead><tbody>\n{rows}</tbody></table>"
        )
    };
    let faults_line = describe_faults(&faults);
    Html(format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5"><title>ConnectWise sandbox · {count} tickets</title>
<style>
body {{ font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }}
header {{ background: #1d2330; color: #fff; padding: 16px 32px; }}
header h1 {{ margin: 0; font-size: 20px; font-weight: 600; }}
header p {{ margin: 4px 0 0; color: #b8c0d0; }}
main {{ max-width: 1100px; margin: 24px auto; padding: 0 24px; }}
.card {{ background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 16px 20px; margin-bottom: 20px; }}
.card h2 {{ font-size: 16px; margin: 0 0 10px; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }}
dt {{ color: #5b6475; }} dd {{ margin: 0; overflow-wrap: anywhere; }}
.mono, dd {{ font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }}
table {{ width: 100%; border-collapse: collapse; }}
th, td {{ text-align: left; vertical-align: top; padding: 10px 8px; border-bottom: 1px solid #eceef2; }}
th {{ font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #5b6475; }}
.num {{ font-weight: 600; white-space: nowrap; }} .when {{ white-space: nowrap; color: #5b6475; font-size: 13px; }}
.muted {{ color: #5b6475; font-size: 13px; }}
.desc {{ white-space: pre-wrap; background: #f5f6f8; border-radius: 4px; padding: 8px; margin-top: 6px; font-size: 13px; }}
.empty {{ color: #5b6475; margin: 0; }}
</style></head>
<body><header><h1>ConnectWise Manage sandbox</h1><p>A local stand-in for ConnectWise Manage: no real PSA is contacted.</p></header>
<main>
<section class="card"><h2>Connect the wizard with</h2><dl>
<dt>Site</dt><dd>http://{addr}</dd><dt>Company ID</dt><dd>{company}</dd>
<dt>Public key</dt><dd>{public}</dd><dt>Private key</dt><dd>{private}</dd>
<dt>Integrator login</dt><dd>{user} / {pass}</dd><dt>clientId expected</dt><dd>{client}</dd>
<dt>Faults</dt><dd>{faults_line}</dd></dl></section>
<section class="card"><h2>Tickets received ({count}), newest first</h2>
{table}
</section></main></body></html>"#,
        count = tickets.len(),
        addr = escape(&sb.inner.addr.to_string()),
        company = escape(&c.company_id),
        public = escape(&c.public_key),
        private = escape(&c.private_key),
        user = escape(&c.integrator_username),
        pass = escape(&c.integrator_password),
        client = escape(&c.client_id),
    ))
}
