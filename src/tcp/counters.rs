//! What the engine counts: events, and every dropped segment by reason.

/// Why the engine dropped a segment. Dropping is normal TCP behaviour, not an error: each has a
/// counter, and `as_str` names it in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpDrop {
    /// RFC 9293 3.10.7.4: not acceptable for the receive window (answered with an ACK).
    OutOfWindow,
    /// RFC 7323 5.3: PAWS rejected an old timestamp.
    Paws,
    /// A segment without ACK in a state that needs one.
    NoAck,
    /// RFC 5961 5.2: SEG.ACK outside [SND.UNA - MAX.SND.WND, SND.NXT].
    BadAck,
    /// A RST that was out of window, or for no connection.
    Rst,
    /// SYN and FIN together, or SYN and RST.
    BadFlags,
    /// A SYN arrived while the SYN queue and the table were full and cookies are off.
    SynQueueFull,
    /// The connection table was full: a SYN (no cookie), or the ACK of a good SYN cookie (not
    /// counted as a failed cookie).
    TableFull,
    /// Data or FIN after the peer's FIN (text in CLOSE-WAIT, LAST-ACK...).
    AfterFin,
    /// Out-of-order data that did not fit (too many holes, or beyond the window).
    NoRoom,
    /// A segment for a port we do not serve.
    NotOurPort,
    /// The server is shutting down and takes no new connections.
    ShuttingDown,
    /// The answer to the segment (a RST, a SYN cookie's SYN/ACK, a TIME-WAIT ACK, a
    /// rate-limited ACK) found no transmit room and was not sent; the peer retransmits.
    NoTxRoom,
    /// Out-of-order data refused because the worker's receive memory is at its limit
    /// (Linux's TCPOFODrop under memory pressure).
    OfoMemory,
    /// In-window data refused because the worker's receive memory is at its limit and the
    /// connection already holds its guaranteed share (Linux's TCPRcvQDrop); the peer
    /// retransmits.
    RecvMemory,
    /// The application refused the connection (`App::on_open` returned `None`): the
    /// completing ACK was answered with RST.
    Refused,
}

impl TcpDrop {
    pub const ALL: [TcpDrop; 16] = [
        TcpDrop::OutOfWindow,
        TcpDrop::Paws,
        TcpDrop::NoAck,
        TcpDrop::BadAck,
        TcpDrop::Rst,
        TcpDrop::BadFlags,
        TcpDrop::SynQueueFull,
        TcpDrop::TableFull,
        TcpDrop::AfterFin,
        TcpDrop::NoRoom,
        TcpDrop::NotOurPort,
        TcpDrop::ShuttingDown,
        TcpDrop::NoTxRoom,
        TcpDrop::OfoMemory,
        TcpDrop::RecvMemory,
        TcpDrop::Refused,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub const fn as_str(self) -> &'static str {
        match self {
            TcpDrop::OutOfWindow => "out_of_window",
            TcpDrop::Paws => "paws",
            TcpDrop::NoAck => "no_ack",
            TcpDrop::BadAck => "bad_ack",
            TcpDrop::Rst => "rst",
            TcpDrop::BadFlags => "bad_flags",
            TcpDrop::SynQueueFull => "syn_queue_full",
            TcpDrop::TableFull => "table_full",
            TcpDrop::AfterFin => "after_fin",
            TcpDrop::NoRoom => "no_room",
            TcpDrop::NotOurPort => "not_our_port",
            TcpDrop::ShuttingDown => "shutting_down",
            TcpDrop::NoTxRoom => "no_tx_room",
            TcpDrop::OfoMemory => "ofo_memory",
            TcpDrop::RecvMemory => "recv_memory",
            TcpDrop::Refused => "refused",
        }
    }
}

/// Monotonic event counters of one engine (one worker).
#[derive(Clone, Debug, Default)]
pub struct TcpCounters {
    pub segments_in: u64,
    pub segments_out: u64,
    pub syns_received: u64,
    pub synacks_sent: u64,
    pub synack_retransmits: u64,
    /// Connections we opened (`Opener::connect`).
    pub active_opens: u64,
    /// SYNs of ours retransmitted.
    pub syn_retransmits: u64,
    /// Connections we opened that ended before their handshake completed (refused, timed
    /// out, aborted).
    pub connect_failed: u64,
    pub syn_cookies_sent: u64,
    pub syn_cookies_validated: u64,
    pub syn_cookies_failed: u64,
    pub established: u64,
    pub closed_normal: u64,
    pub closed_reset: u64,
    pub closed_timeout: u64,
    pub closed_aborted: u64,
    pub resets_sent: u64,
    pub challenge_acks: u64,
    pub acks_rate_limited: u64,
    pub retransmits: u64,
    pub fast_retransmits: u64,
    pub rto_expirations: u64,
    /// RFC 8985 7.3: tail loss probes sent.
    pub tlp_probes: u64,
    /// RFC 8985 6.2: segments RACK found lost.
    pub rack_losses: u64,
    pub out_of_order: u64,
    pub zero_window_probes: u64,
    /// Times a connection's out-of-order data was pruned to make room (Linux's PruneCalled).
    pub ofo_pruned: u64,
    pub time_wait_entered: u64,
    pub time_wait_reused: u64,
    pub time_wait_overflow: u64,
    /// Times a connection's output had to wait for transmit room (resumed, not lost).
    pub tx_deferred: u64,
    /// ICMP "fragmentation needed" / ICMPv6 "packet too big" messages that lowered a
    /// connection's MSS (RFC 1191, RFC 8201).
    pub pmtu_lowered: u64,
    /// Path-MTU messages ignored: no such connection, the quoted sequence number not in flight
    /// (RFC 5927), or no smaller MSS.
    pub pmtu_ignored: u64,
    pub drops: [u64; TcpDrop::COUNT],
}

impl TcpCounters {
    #[inline]
    pub fn drop(&mut self, why: TcpDrop) {
        self.drops[why as usize] += 1;
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn dropped(&self, why: TcpDrop) -> u64 {
        self.drops[why as usize]
    }
}
