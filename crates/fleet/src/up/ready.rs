//! Waiting for the group: every node's entrypoint status polled each second, a node's line
//! shown when it changes, until all are ready; a node that is `down` (restart budget spent)
//! ends the wait.

use super::plan::NodePlan;
use crate::Report;
use anyhow::bail;
use cluster::ops::node::NodeStatus;
use cluster::Cluster;
use std::time::{Duration, Instant};

/// The line last shown for each node.
pub(crate) struct Readiness {
    last: Vec<String>,
}

/// What one poll says.
#[derive(Debug, PartialEq)]
pub(crate) struct Poll {
    /// Nodes (by index) whose line changed, with the new line.
    pub changed: Vec<(usize, String)>,
    pub ready: usize,
    /// The first node found `down` and its detail; the nodes after it were not looked at.
    pub down: Option<(usize, String)>,
}

impl Readiness {
    pub(crate) fn new(nodes: usize) -> Readiness {
        Readiness { last: vec![String::new(); nodes] }
    }

    pub(crate) fn poll(&mut self, states: &[anyhow::Result<NodeStatus>]) -> Poll {
        let mut poll = Poll { changed: Vec::new(), ready: 0, down: None };
        for (i, st) in states.iter().enumerate() {
            let line = match st {
                Ok(s) => {
                    let state = s.state.clone().unwrap_or_else(|| format!("no container (unit {})", s.unit));
                    if state == "ready" {
                        poll.ready += 1;
                    }
                    if state == "down" {
                        poll.down = Some((i, s.detail.clone()));
                        return poll;
                    }
                    if s.detail.is_empty() {
                        state
                    } else {
                        format!("{state}: {}", s.detail)
                    }
                }
                Err(e) => format!("unknown: {e}"),
            };
            if line != self.last[i] {
                poll.changed.push((i, line.clone()));
                self.last[i] = line;
            }
        }
        poll
    }
}

/// Polls until every node is ready, then shows the API's URL.
pub(crate) fn wait_ready(c: &Cluster, plans: &[NodePlan], start: Instant, timeout: Duration, report: &dyn Report) -> anyhow::Result<()> {
    let mut readiness = Readiness::new(plans.len());
    loop {
        let states: Vec<_> = std::thread::scope(|s| {
            let h: Vec<_> = plans.iter().map(|p| s.spawn(|| crate::status::node_status(c, &p.target))).collect();
            h.into_iter().map(|h| h.join().expect("status thread")).collect()
        });
        let poll = readiness.poll(&states);
        for (i, line) in &poll.changed {
            report.line(&format!("{}: {line} ({:.0?})", plans[*i].node.name, start.elapsed()));
        }
        if let Some((i, detail)) = poll.down {
            let name = &plans[i].node.name;
            bail!("node `{name}` is down: {detail}; see `sparkctl status` and `sparkctl logs --node {name}`");
        }
        if poll.ready == plans.len() {
            let head = c.head();
            let addr = head.management.as_ref().map_or(head.rail_addr(), |m| m.address.addr);
            report.line(&format!("ready in {:.1} s: http://{addr}:{}/v1", start.elapsed().as_secs_f64(), c.serve.port));
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("the group was not ready within {} s; see `sparkctl status` and `sparkctl logs`", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(state: Option<&str>, detail: &str) -> anyhow::Result<NodeStatus> {
        Ok(NodeStatus { unit: "active".into(), state: state.map(Into::into), detail: detail.into(), ..NodeStatus::default() })
    }

    #[test]
    fn a_line_is_shown_once_per_change() {
        let mut r = Readiness::new(2);
        let p = r.poll(&[at(None, ""), at(Some("rendezvous"), "1 of 2 peers")]);
        assert_eq!(p.changed, [(0, "no container (unit active)".to_owned()), (1, "rendezvous: 1 of 2 peers".to_owned())]);
        let p = r.poll(&[at(None, ""), at(Some("rendezvous"), "1 of 2 peers")]);
        assert!(p.changed.is_empty());
        let p = r.poll(&[at(Some("ready"), ""), Err(anyhow::anyhow!("cannot reach"))]);
        assert_eq!(p.changed, [(0, "ready".to_owned()), (1, "unknown: cannot reach".to_owned())]);
        assert_eq!((p.ready, p.down), (1, None));
        assert_eq!(r.poll(&[at(Some("ready"), ""), at(Some("ready"), "")]).ready, 2);
    }

    #[test]
    fn a_node_down_ends_the_poll_at_that_node() {
        let mut r = Readiness::new(3);
        let p = r.poll(&[at(Some("launch"), ""), at(Some("down"), "restart budget spent"), at(Some("ready"), "")]);
        assert_eq!(p.changed, [(0, "launch".to_owned())]);
        assert_eq!(p.down, Some((1, "restart budget spent".to_owned())));
    }
}
