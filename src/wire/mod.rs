//! Wire formats: zero-copy views over received frames and in-place builders for frames to send.
//! Nothing here allocates, reads a clock or makes a syscall; every view checks lengths up front.

pub mod tcp;
