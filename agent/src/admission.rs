//! Who may hold a connection to the agent, and when a connection has gone
//! without requests for too long (pure: no sockets, no clock; time passed in).
//!
//! [`Admission`] counts connections: in total, handshakes in flight per
//! source address, and established connections per console (the console id
//! of its verified certificate). [`Activity`] says when one connection must
//! be closed because no request came: none within a deadline of the
//! handshake, or none for a while after the last answer, whatever keep-alive
//! packets flow. The server shell enforces both, and a deadline per request
//! frame and per response.

use std::collections::HashMap;
use std::net::IpAddr;

use uuid::Uuid;

/// The agent server's limits against misbehaving consoles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections at once, handshakes included, from every console.
    pub max_connections: usize,
    /// Established connections at once from one console (one certificate).
    /// A console's GUI holds one for a live view and opens one per sync
    /// pass; its CLI may run beside it.
    pub max_connections_per_console: usize,
    /// Handshakes in flight at once from one IP address.
    pub max_handshakes_per_ip: usize,
    /// A handshake not finished this long after its first packet is dropped.
    pub handshake_timeout_ms: u64,
    /// A connection whose first whole request has not arrived this long
    /// after its handshake is closed.
    pub first_request_timeout_ms: u64,
    /// A stream whose request frame is not whole this long after it opened
    /// is reset.
    pub request_timeout_ms: u64,
    /// A response the console has not taken this long after it was ready
    /// is abandoned (its stream is reset).
    pub response_timeout_ms: u64,
    /// A connection with no request for this long after its last answer is
    /// closed, even though keep-alive packets flow. A live view asks a frame
    /// every 1–10 s and a sync asks back to back, so only a connection
    /// nobody uses is closed.
    pub request_idle_timeout_ms: u64,
}

impl ServerLimits {
    /// Defaults for a real site (see each field).
    pub const DEFAULT: ServerLimits = ServerLimits {
        max_connections: 32,
        max_connections_per_console: 4,
        max_handshakes_per_ip: 8,
        handshake_timeout_ms: 10_000,
        first_request_timeout_ms: 10_000,
        request_timeout_ms: 10_000,
        response_timeout_ms: 30_000,
        request_idle_timeout_ms: 60_000,
    };
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits::DEFAULT
    }
}

/// Why a connection is refused. The text is what the console reads in the
/// close reason and what the agent logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the agent is serving {max} connections already; try again later")]
    Full { max: usize },
    #[error("too many handshakes from {ip} at once (at most {max})")]
    HandshakesFromAddress { ip: IpAddr, max: usize },
    #[error("too many connections from this console (at most {max} at once)")]
    ConsoleConnections { max: usize },
}

/// Connection counts of one agent server.
#[derive(Debug)]
pub struct Admission {
    limits: ServerLimits,
    /// Every connection counted, handshaking or established.
    open: usize,
    handshakes: HashMap<IpAddr, usize>,
    consoles: HashMap<Uuid, usize>,
}

impl Admission {
    pub fn new(limits: &ServerLimits) -> Self {
        Admission {
            limits: *limits,
            open: 0,
            handshakes: HashMap::new(),
            consoles: HashMap::new(),
        }
    }

    /// A handshake from `ip` wants to start (its source address already
    /// validated). On `Ok` it counts until [`Admission::handshake_over`],
    /// and the connection until [`Admission::closed`].
    pub fn begin_handshake(&mut self, ip: IpAddr) -> Result<(), Refusal> {
        if self.open >= self.limits.max_connections {
            return Err(Refusal::Full {
                max: self.limits.max_connections,
            });
        }
        if count(&self.handshakes, ip) >= self.limits.max_handshakes_per_ip {
            return Err(Refusal::HandshakesFromAddress {
                ip,
                max: self.limits.max_handshakes_per_ip,
            });
        }
        *self.handshakes.entry(ip).or_insert(0) += 1;
        self.open += 1;
        Ok(())
    }

    /// The handshake from `ip` finished, failed or timed out.
    pub fn handshake_over(&mut self, ip: IpAddr) {
        release(&mut self.handshakes, ip);
    }

    /// The connection's handshake proved it is `console`: may it stay? On
    /// `Ok` it counts for that console until [`Admission::closed`].
    pub fn establish(&mut self, console: Uuid) -> Result<(), Refusal> {
        if count(&self.consoles, console) >= self.limits.max_connections_per_console {
            return Err(Refusal::ConsoleConnections {
                max: self.limits.max_connections_per_console,
            });
        }
        *self.consoles.entry(console).or_insert(0) += 1;
        Ok(())
    }

    /// A counted connection ended; `console` when it was established.
    pub fn closed(&mut self, console: Option<Uuid>) {
        self.open = self.open.saturating_sub(1);
        if let Some(console) = console {
            release(&mut self.consoles, console);
        }
    }

    /// Connections counted now (handshakes included).
    pub fn open(&self) -> usize {
        self.open
    }
}

fn count<K: std::hash::Hash + Eq>(counts: &HashMap<K, usize>, key: K) -> usize {
    counts.get(&key).copied().unwrap_or(0)
}

fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(count) = counts.get_mut(&key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(&key);
        }
    }
}

/// Why a connection was closed for want of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Quiet {
    #[error("no request within {timeout_ms} ms of the handshake")]
    NoFirstRequest { timeout_ms: u64 },
    #[error("no request for {timeout_ms} ms")]
    NoRequest { timeout_ms: u64 },
}

/// Requests on one connection over time, for its quiet deadline. Only whole
/// requests count: streams whose frame never completes keep nothing open.
#[derive(Debug)]
pub struct Activity {
    first_request_timeout_ms: u64,
    request_idle_timeout_ms: u64,
    /// Whole requests received and not yet answered.
    answering: u32,
    any_request: bool,
    /// Since when nothing has been answered nor awaited an answer.
    quiet_since_ms: u64,
}

impl Activity {
    /// A connection whose handshake finished at `now_ms`.
    pub fn new(limits: &ServerLimits, now_ms: u64) -> Self {
        Activity {
            first_request_timeout_ms: limits.first_request_timeout_ms,
            request_idle_timeout_ms: limits.request_idle_timeout_ms,
            answering: 0,
            any_request: false,
            quiet_since_ms: now_ms,
        }
    }

    /// A whole request arrived; the connection is busy until it is answered.
    pub fn request_received(&mut self) {
        self.answering = self.answering.saturating_add(1);
        self.any_request = true;
    }

    /// A request was answered (or its answer abandoned) at `now_ms`.
    pub fn request_answered(&mut self, now_ms: u64) {
        self.answering = self.answering.saturating_sub(1);
        if self.answering == 0 {
            self.quiet_since_ms = now_ms;
        }
    }

    /// When the connection must be closed if nothing changes; `None` while
    /// a request is being answered.
    pub fn deadline_ms(&self) -> Option<u64> {
        (self.answering == 0).then(|| {
            self.quiet_since_ms
                .saturating_add(self.quiet_limit().timeout_ms())
        })
    }

    /// Whether the connection must be closed at `now_ms`, and why.
    pub fn expired(&self, now_ms: u64) -> Option<Quiet> {
        let deadline_ms = self.deadline_ms()?;
        (now_ms >= deadline_ms).then(|| self.quiet_limit())
    }

    fn quiet_limit(&self) -> Quiet {
        if self.any_request {
            Quiet::NoRequest {
                timeout_ms: self.request_idle_timeout_ms,
            }
        } else {
            Quiet::NoFirstRequest {
                timeout_ms: self.first_request_timeout_ms,
            }
        }
    }
}

impl Quiet {
    fn timeout_ms(self) -> u64 {
        match self {
            Quiet::NoFirstRequest { timeout_ms } | Quiet::NoRequest { timeout_ms } => timeout_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ServerLimits = ServerLimits {
        max_connections: 5,
        max_connections_per_console: 2,
        max_handshakes_per_ip: 2,
        handshake_timeout_ms: 1_000,
        first_request_timeout_ms: 3_000,
        request_timeout_ms: 1_000,
        response_timeout_ms: 1_000,
        request_idle_timeout_ms: 10_000,
    };

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn console(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// One step of a connection's life and what admission must answer.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Begin(u8, Result<(), Refusal>),
        HandshakeOver(u8),
        Establish(u128, Result<(), Refusal>),
        Closed(Option<u128>),
        Open(usize),
    }

    fn run(steps: &[Step]) {
        let mut admission = Admission::new(&LIMITS);
        for (index, step) in steps.iter().enumerate() {
            match *step {
                Step::Begin(last, expected) => {
                    assert_eq!(
                        admission.begin_handshake(ip(last)),
                        expected,
                        "step {index}"
                    )
                }
                Step::HandshakeOver(last) => admission.handshake_over(ip(last)),
                Step::Establish(n, expected) => {
                    assert_eq!(admission.establish(console(n)), expected, "step {index}")
                }
                Step::Closed(n) => admission.closed(n.map(console)),
                Step::Open(expected) => assert_eq!(admission.open(), expected, "step {index}"),
            }
        }
    }

    const OK: Result<(), Refusal> = Ok(());
    const PER_IP: Result<(), Refusal> = Err(Refusal::HandshakesFromAddress {
        ip: IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
        max: 2,
    });
    const PER_CONSOLE: Result<(), Refusal> = Err(Refusal::ConsoleConnections { max: 2 });
    const FULL: Result<(), Refusal> = Err(Refusal::Full { max: 5 });

    #[test]
    fn handshakes_are_bounded_per_address_until_they_end() {
        use Step::*;
        run(&[
            Begin(1, OK),
            Begin(1, OK),
            Begin(1, PER_IP),
            // Another address is not affected.
            Begin(2, OK),
            Open(3),
            // A finished handshake frees its address's slot, not the
            // connection's.
            HandshakeOver(1),
            Open(3),
            Begin(1, OK),
            Begin(1, PER_IP),
            // A failed handshake frees both.
            HandshakeOver(1),
            Closed(None),
            Open(3),
            Begin(1, OK),
        ]);
    }

    #[test]
    fn connections_are_bounded_per_console_and_in_total() {
        use Step::*;
        run(&[
            Begin(1, OK),
            HandshakeOver(1),
            Establish(7, OK),
            Begin(1, OK),
            HandshakeOver(1),
            Establish(7, OK),
            Begin(1, OK),
            HandshakeOver(1),
            Establish(7, PER_CONSOLE),
            // The refused connection is closed: its slot comes back.
            Closed(None),
            Open(2),
            // Another console from the same address is welcome.
            Begin(1, OK),
            HandshakeOver(1),
            Establish(8, OK),
            // A console that left may come back.
            Closed(Some(7)),
            Begin(1, OK),
            HandshakeOver(1),
            Establish(7, OK),
            Open(3),
            // Handshakes count against the total.
            Begin(2, OK),
            Begin(3, OK),
            Begin(4, FULL),
            Open(5),
            Closed(Some(8)),
            Begin(4, OK),
        ]);
    }

    #[test]
    fn releasing_more_than_was_counted_never_underflows() {
        use Step::*;
        run(&[
            HandshakeOver(1),
            Closed(Some(3)),
            Open(0),
            Begin(1, OK),
            Begin(1, OK),
            Begin(1, PER_IP),
        ]);
    }

    #[test]
    fn refusals_say_what_a_console_can_act_on() {
        assert_eq!(
            Refusal::ConsoleConnections { max: 4 }.to_string(),
            "too many connections from this console (at most 4 at once)"
        );
        assert_eq!(
            Refusal::HandshakesFromAddress { ip: ip(9), max: 8 }.to_string(),
            "too many handshakes from 10.0.0.9 at once (at most 8)"
        );
    }

    /// What happens to a connection at a time, and its deadline after.
    #[derive(Debug, Clone, Copy)]
    enum Event {
        Received,
        Answered(u64),
        /// (now, expected expiry)
        Check(u64, Option<Quiet>),
        Deadline(Option<u64>),
    }

    fn replay(events: &[Event]) {
        let mut activity = Activity::new(&LIMITS, 1_000);
        for (index, event) in events.iter().enumerate() {
            match *event {
                Event::Received => activity.request_received(),
                Event::Answered(now_ms) => activity.request_answered(now_ms),
                Event::Check(now_ms, expected) => {
                    assert_eq!(activity.expired(now_ms), expected, "event {index}")
                }
                Event::Deadline(expected) => {
                    assert_eq!(activity.deadline_ms(), expected, "event {index}")
                }
            }
        }
    }

    const FIRST: Option<Quiet> = Some(Quiet::NoFirstRequest { timeout_ms: 3_000 });
    const IDLE: Option<Quiet> = Some(Quiet::NoRequest { timeout_ms: 10_000 });

    #[test]
    fn a_connection_without_a_first_request_expires() {
        use Event::*;
        replay(&[
            Deadline(Some(4_000)),
            Check(3_999, None),
            Check(4_000, FIRST),
            Check(90_000, FIRST),
        ]);
    }

    #[test]
    fn requests_being_answered_keep_a_connection_and_idle_counts_from_the_last_answer() {
        use Event::*;
        replay(&[
            Received,
            Deadline(None),
            // A long answer (a live frame waits out its interval) is not idle.
            Check(60_000, None),
            Received,
            Answered(61_000),
            // One of two answered: still busy.
            Deadline(None),
            Answered(62_000),
            Deadline(Some(72_000)),
            Check(71_999, None),
            Check(72_000, IDLE),
            // A new request before the check keeps it open.
            Received,
            Check(80_000, None),
            Answered(80_500),
            Check(90_499, None),
            Check(90_500, IDLE),
        ]);
    }

    #[test]
    fn unbalanced_answers_never_underflow() {
        use Event::*;
        replay(&[Answered(2_000), Deadline(Some(5_000)), Check(5_000, FIRST)]);
    }
}
