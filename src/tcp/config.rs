//! Engine settings. Defaults follow Linux where the RFCs leave room.

use std::time::Duration;

use super::rto::RtoConfig;

#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// The MSS we announce over IPv4: the MTU less 40 bytes of IPv4 and TCP headers (over
    /// IPv6, 20 bytes less: see [`TcpConfig::mss_for`]).
    pub mss: u16,
    /// Receive buffer per connection: the most the receive window ever offers.
    pub recv_buffer: usize,
    /// Send limit per connection: the most bytes the application may have queued and not yet
    /// acknowledged (`AppIo::send` takes at most what fits; Linux's `SO_SNDBUF`).
    pub send_buffer: usize,
    pub rto: RtoConfig,
    /// RFC 9293 3.8.6.3 / RFC 1122 4.2.3.2: an ACK may wait at most this long (Linux: 40 ms).
    pub delayed_ack: Duration,
    /// Data retransmissions before the connection is reset.
    pub max_retries: u32,
    /// Zero-window probes in a row left unanswered before the connection is reset. A peer
    /// that answers them keeps its connection however long its window stays shut (RFC 1122
    /// 4.2.2.17; Linux's tcp_probe_timer, whose limit is tcp_retries2 like data's).
    pub max_probes: u32,
    /// SYN/ACK retransmissions before a half-open connection is forgotten (Linux: 5).
    pub synack_retries: u32,
    /// SYN retransmissions of a connection we open before it fails (Linux's
    /// tcp_syn_retries: 6, i.e. after 1+2+4+8+16+32+64 s).
    pub syn_retries: u32,
    /// Maximum segment lifetime; TIME-WAIT lasts 2*MSL (default 60 s, as Linux).
    pub msl: Duration,
    /// How long FIN-WAIT-2 waits for the peer's FIN (Linux's tcp_fin_timeout).
    pub fin_wait_2_timeout: Duration,
    /// RFC 5961 7 / Linux's tcp_invalid_ratelimit: at most one challenge or
    /// out-of-window ACK per connection per interval.
    pub ack_rate_limit: Duration,
    /// RFC 8985 7.2 WCDelAckT: how long the peer may delay its ACK, added to the tail loss
    /// probe's timeout when one segment is in flight. The RFC recommends 200 ms, which on a
    /// LAN makes the probe no earlier than the RTO; 40 ms is the delayed-ACK time of Linux
    /// receivers (TCP_ATO_MIN, as `delayed_ack` here), so a lost last segment of a response
    /// is probed after 2*SRTT + 40 ms.
    pub tlp_ack_delay: Duration,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            recv_buffer: 256 * 1024,
            send_buffer: 256 * 1024,
            rto: RtoConfig::default(),
            delayed_ack: Duration::from_millis(40),
            max_retries: 10,
            max_probes: 10,
            synack_retries: 5,
            syn_retries: 6,
            msl: Duration::from_secs(30),
            fin_wait_2_timeout: Duration::from_secs(60),
            ack_rate_limit: Duration::from_millis(500),
            tlp_ack_delay: Duration::from_millis(40),
        }
    }
}

impl TcpConfig {
    /// The MSS for a link MTU.
    pub fn mss_for_mtu(mtu: u16) -> u16 {
        mtu.saturating_sub(40).max(536)
    }

    /// The MSS we announce on a connection of one family: `mss` over IPv4, 20 bytes less over
    /// IPv6, whose header is 40 bytes (RFC 8200 3; as Linux's MTU - 60).
    #[inline]
    pub fn mss_for(&self, v4: bool) -> u16 {
        if v4 { self.mss } else { self.mss.saturating_sub(20).max(536) }
    }

    /// Our window scale shift (RFC 7323 2.3): the smallest that lets the field cover the buffer.
    pub fn window_scale(&self) -> u8 {
        let mut shift = 0u8;
        while (self.recv_buffer >> shift) > 65535 && shift < 14 {
            shift += 1;
        }
        shift
    }

    pub fn time_wait_len(&self) -> Duration {
        self.msl * 2
    }
}
