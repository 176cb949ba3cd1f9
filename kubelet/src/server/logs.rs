//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's log as the
//! runtime wrote it (the CRI log format: `<RFC 3339 time> <stream> <P|F> <text>` per
//! line, `P` marking a line split by the runtime), returned as plain text with
//! upstream's options: `follow`, `previous`, `timestamps`, `tailLines`, `limitBytes`,
//! `sinceSeconds` and `sinceTime`.

use std::io::SeekFrom;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{StatusCode, header};
use jiff::Timestamp;
use k8s_cri::v1 as cri;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::{Api, Failure, PathParams, QueryPairs, attempts, flag, param, value};

/// How often a followed log is read again when nothing new was there.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// One logical line: the runtime's partial pieces joined.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    time: String,
    text: String,
    complete: bool,
}

/// The options that shape the output.
#[derive(Debug, Clone, Default)]
struct Options {
    timestamps: bool,
    tail: Option<usize>,
    limit: Option<usize>,
    since: Option<Timestamp>,
}

pub(super) async fn container_logs(
    State(api): State<Api>,
    path: PathParams,
    query: QueryPairs,
) -> Result<Response, Failure> {
    let (namespace, pod, container) = (param(&path, "namespace"), param(&path, "pod"), param(&path, "container"));
    let bad = |message: String| Failure(StatusCode::BAD_REQUEST, message);
    let number = |name: &str| -> Result<Option<i64>, Failure> {
        value(&query, name).map(|v| v.parse::<i64>().map_err(|_| bad(format!("invalid {name}: {v:?}")))).transpose()
    };
    let mut options = Options {
        timestamps: flag(&query, "timestamps"),
        tail: number("tailLines")?.map(|n| n.max(0) as usize),
        limit: number("limitBytes")?.map(|n| n.max(1) as usize),
        since: None,
    };
    if let Some(seconds) = number("sinceSeconds")? {
        options.since = Some(Timestamp::now() - jiff::SignedDuration::from_secs(seconds));
    } else if let Some(time) = value(&query, "sinceTime") {
        options.since = Some(time.parse().map_err(|_| bad(format!("invalid sinceTime: {time:?}")))?);
    }
    let found = attempts(&api.runtime, namespace, pod, container).await?;
    let chosen = if flag(&query, "previous") {
        found
            .get(1)
            .ok_or_else(|| bad(format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")))?
    } else {
        found.first().ok_or_else(|| {
            bad(format!("container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"))
        })?
    };
    let status = api.runtime.container_status(&chosen.id).await?;
    let follow = flag(&query, "follow") && status.state == cri::ContainerState::ContainerRunning as i32;
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let runtime = api.runtime.clone();
    let id = chosen.id.clone();
    tokio::spawn(async move {
        if let Err(e) = stream(&status.log_path, options, follow, sender.clone(), || {
            let runtime = runtime.clone();
            let id = id.clone();
            async move {
                runtime
                    .container_status(&id)
                    .await
                    .map(|s| s.state == cri::ContainerState::ContainerRunning as i32)
                    .unwrap_or(false)
            }
        })
        .await
        {
            let _ = sender.send(Err(e)).await;
        }
    });
    let body =
        Body::from_stream(futures::stream::unfold(receiver, |mut r| async move { r.recv().await.map(|c| (c, r)) }));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body)
        .expect("a response from valid parts"))
}

/// Writes the log at `path` to `out`; when following, keeps reading until `running`
/// says the container stopped and nothing is left.
async fn stream<F, Fut>(
    path: &str,
    options: Options,
    follow: bool,
    out: mpsc::Sender<Result<Bytes, std::io::Error>>,
    running: F,
) -> Result<(), std::io::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        // No line written yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !follow => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.read_to_string(&mut text).await?;
    let mut offset = text.len() as u64;
    // A last line without its newline is still being written: keep it for later.
    let cut = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let mut pending = text.split_off(cut);
    let mut lines = parse(&text);
    if let Some(since) = options.since {
        lines.retain(|l| l.time.parse::<Timestamp>().map(|t| t >= since).unwrap_or(true));
    }
    if let Some(tail) = options.tail {
        let complete: Vec<usize> = lines.iter().enumerate().filter(|(_, l)| l.complete).map(|(i, _)| i).collect();
        if complete.len() > tail {
            let first = if tail == 0 { lines.len() } else { complete[complete.len() - tail - 1] + 1 };
            lines.drain(..first);
        }
    }
    let mut budget = options.limit.unwrap_or(usize::MAX);
    if !send(&out, render(&lines, options.timestamps), &mut budget).await || !follow {
        return Ok(());
    }
    let mut carry: Option<Line> = lines.last().filter(|l| !l.complete).cloned();
    loop {
        let mut chunk = String::new();
        file.seek(SeekFrom::Start(offset)).await?;
        let read = file.read_to_string(&mut chunk).await?;
        offset += read as u64;
        if read == 0 {
            if !running().await {
                return Ok(());
            }
            tokio::time::sleep(FOLLOW_POLL).await;
            continue;
        }
        pending.push_str(&chunk);
        let cut = pending.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let rest = pending.split_off(cut);
        let mut new = parse(&pending);
        pending = rest;
        if let (Some(previous), Some(first)) = (carry.take(), new.first_mut()) {
            // The piece sent already is not sent again; its time is the line's.
            first.time = previous.time;
        }
        carry = new.last().filter(|l| !l.complete).cloned();
        if !send(&out, render(&new, options.timestamps), &mut budget).await {
            return Ok(());
        }
    }
}

/// Sends `bytes` within the byte budget; false when the reader is gone or the budget
/// is spent.
async fn send(out: &mpsc::Sender<Result<Bytes, std::io::Error>>, mut bytes: Vec<u8>, budget: &mut usize) -> bool {
    if bytes.len() > *budget {
        bytes.truncate(*budget);
    }
    *budget -= bytes.len();
    if !bytes.is_empty() && out.send(Ok(Bytes::from(bytes))).await.is_err() {
        return false;
    }
    *budget > 0
}

/// The logical lines of complete CRI log lines; malformed ones are skipped.
fn parse(text: &str) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::new();
    for raw in text.lines() {
        let mut fields = raw.splitn(4, ' ');
        let (Some(time), Some(_stream), Some(tag), content) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let partial = tag.split(':').any(|t| t == "P");
        let content = content.unwrap_or_default();
        match lines.last_mut() {
            Some(last) if !last.complete => {
                last.text.push_str(content);
                last.complete = !partial;
            }
            _ => lines.push(Line { time: time.to_owned(), text: content.to_owned(), complete: !partial }),
        }
    }
    lines
}

fn render(lines: &[Line], timestamps: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        if timestamps {
            out.extend_from_slice(line.time.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(line.text.as_bytes());
        if line.complete {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-01-01T00:00:01.000000001Z stdout F one\n\
                       2026-01-01T00:00:02.000000001Z stderr P tw\n\
                       2026-01-01T00:00:02.500000001Z stderr F o\n\
                       2026-01-01T00:00:03.000000001Z stdout F three\n";

    async fn collect(options: Options) -> String {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), LOG).unwrap();
        let (sender, mut receiver) = mpsc::channel(16);
        stream(file.path().to_str().unwrap(), options, false, sender, || async { false }).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = receiver.recv().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn partial_lines_join_and_options_shape_the_output() {
        assert_eq!(collect(Options::default()).await, "one\ntwo\nthree\n");
        assert_eq!(collect(Options { tail: Some(2), ..Default::default() }).await, "two\nthree\n");
        assert_eq!(collect(Options { tail: Some(0), ..Default::default() }).await, "");
        assert_eq!(collect(Options { limit: Some(6), ..Default::default() }).await, "one\ntw");
        let since = "2026-01-01T00:00:02Z".parse().ok();
        assert_eq!(collect(Options { since, ..Default::default() }).await, "two\nthree\n");
        assert_eq!(
            collect(Options { timestamps: true, tail: Some(1), ..Default::default() }).await,
            "2026-01-01T00:00:03.000000001Z three\n"
        );
    }
}
