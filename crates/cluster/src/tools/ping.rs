//! `ping` (iputils): packets sent and answered, and the local "message too long" refusal that
//! says the interface's own MTU is below the payload.

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
/// What `ping` printed.
pub struct Ping {
    /// Packets sent.
    pub transmitted: Option<u32>,
    /// Packets answered.
    pub received: Option<u32>,
    /// `ping: local error: message too long, mtu=1500`: the interface MTU, when ping printed it.
    pub local_mtu: Option<u32>,
    pub(crate) errors: Vec<String>,
}

impl Ping {
    /// Every packet came back.
    pub fn ok(&self) -> bool {
        self.transmitted.is_some_and(|t| t > 0) && self.transmitted == self.received && self.errors.is_empty()
    }
}

/// Reads `ping` output.
pub fn parse(text: &str) -> Ping {
    let mut p = Ping::default();
    for line in text.lines().map(str::trim) {
        // `3 packets transmitted, 3 received, 0% packet loss, time 402ms`
        if line.contains("packets transmitted") {
            let mut words = line.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty());
            p.transmitted = words.next().and_then(|w| w.parse().ok());
            let rest: Vec<&str> = words.collect();
            p.received = rest.windows(2).find(|w| w[1] == "received").and_then(|w| w[0].parse().ok());
        } else if line.contains("message too long") || line.contains("Frag needed") {
            p.local_mtu = line.rsplit_once("mtu=").and_then(|(_, m)| m.trim().parse().ok()).or(p.local_mtu);
            if !p.errors.iter().any(|e| e == line) {
                p.errors.push(line.to_owned());
            }
        } else if line.starts_with("ping:") {
            p.errors.push(line.to_owned());
        }
    }
    p
}
