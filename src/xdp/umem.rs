//! The UMEM: one memory area cut into equal frames, registered with the kernel. Frames are
//! named by their byte address in the area.
//!
//! Ownership of each frame is a value: an [`OwnedFrame`], neither `Clone` nor `Copy`. At any
//! time a frame is in exactly one place: the fill ring, the kernel, the RX batch being
//! processed, the TX free list, the TX ring, or the completion ring (see `socket.rs`). While
//! it is in our hands, its `OwnedFrame` is the only way to read or write it: [`Umem::frame`]
//! borrows the token shared and [`Umem::frame_mut`] borrows it exclusively, so the borrow
//! checker rules out two slices aliasing one frame. Tokens are made once per frame
//! ([`Umem::take_frames`]), given up when the frame's address is posted to the kernel
//! ([`Umem::to_kernel`]) and made again only from an address the kernel hands back
//! ([`Umem::reclaim`], the one `unsafe` step: it trusts the ring protocol).

use std::sync::atomic::{AtomicU32, Ordering};

use super::sys::Mapping;

/// Identifies a UMEM, so that a frame token of one UMEM is never taken for one of another.
static NEXT_UMEM_ID: AtomicU32 = AtomicU32::new(0);

/// Proof that the holder owns one frame of one [`Umem`]: the frame is in no ring and the
/// kernel does not touch it. Not `Clone`, not `Copy`; only the `Umem` creates these, and only
/// once per frame handed to us.
#[derive(Debug, PartialEq, Eq)]
pub struct OwnedFrame {
    umem: u32,
    index: u32,
}

impl OwnedFrame {
    /// The frame's number in its UMEM.
    #[cfg(any(test, feature = "internals"))]
    pub fn index(&self) -> u32 {
        self.index
    }
}

/// A memory area of `frames` frames of `frame_size` bytes, shared with the kernel.
pub struct Umem {
    map: Mapping,
    frame_size: u32,
    frames: u32,
    id: u32,
    /// Whether [`Umem::take_frames`] has handed out the frames' tokens.
    taken: bool,
}

impl Umem {
    /// Maps `frames` frames of `frame_size` bytes (2048 or 4096). Their tokens come from
    /// [`Umem::take_frames`].
    pub fn new(frames: u32, frame_size: u32) -> Result<Umem, String> {
        if !(frame_size == 2048 || frame_size == 4096) {
            return Err(format!("frame size {frame_size} must be 2048 or 4096"));
        }
        if frames == 0 {
            return Err("a UMEM needs at least one frame".into());
        }
        let id = NEXT_UMEM_ID
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .map_err(|_| "too many UMEMs created in this process".to_string())?;
        let len = frames as usize * frame_size as usize;
        let map = Mapping::anonymous(len)
            .map_err(|e| format!("cannot allocate {len} bytes of UMEM: {e}"))?;
        Ok(Umem {
            map,
            frame_size,
            frames,
            id,
            taken: false,
        })
    }

    /// Bytes per frame.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }
    /// Number of frames.
    pub fn frames(&self) -> u32 {
        self.frames
    }
    /// Bytes in the area.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Never true: a UMEM has at least one frame.
    #[cfg(any(test, feature = "internals"))]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// The start of the area (for `XDP_UMEM_REG`).
    pub fn base(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// The address of frame number `i`.
    pub fn addr_of(&self, i: u32) -> u64 {
        i as u64 * self.frame_size as u64
    }

    /// The tokens of every frame, in address order, on the first call; nothing afterwards.
    pub fn take_frames(&mut self) -> Vec<OwnedFrame> {
        if std::mem::replace(&mut self.taken, true) {
            return Vec::new();
        }
        (0..self.frames)
            .map(|index| OwnedFrame {
                umem: self.id,
                index,
            })
            .collect()
    }

    /// Gives the frame up to the kernel: returns the address to post on the fill or TX ring.
    #[inline]
    pub fn to_kernel(&self, frame: OwnedFrame) -> u64 {
        self.check(&frame);
        self.addr_of(frame.index)
    }

    /// The token of the frame holding `addr`, an address the kernel handed back; `None` if
    /// `addr` lies outside the area.
    ///
    /// # Safety
    /// `addr` must have been read from the RX or completion ring of a socket this UMEM is
    /// registered with, and so name a frame that was given up with [`Umem::to_kernel`] and that
    /// the kernel now returns; each such address is reclaimed once. Then no other token of the
    /// frame exists and the kernel no longer writes it.
    #[inline]
    pub unsafe fn reclaim(&self, addr: u64) -> Option<OwnedFrame> {
        if addr >= self.map.len() as u64 {
            return None;
        }
        Some(OwnedFrame {
            umem: self.id,
            index: (addr / self.frame_size as u64) as u32,
        })
    }

    /// `len` bytes at `addr` of the owned `frame`, if they lie inside it. Without a token
    /// there is no way in: the frame could be in a ring, being written by the kernel.
    ///
    /// ```compile_fail
    /// # use synack::xdp::umem::Umem;
    /// let umem = Umem::new(1, 2048).unwrap();
    /// let bytes = umem.frame(0, 60); // error: no `OwnedFrame` to show
    /// ```
    #[inline]
    pub fn frame<'a>(&'a self, frame: &'a OwnedFrame, addr: u64, len: u32) -> Option<&'a [u8]> {
        self.check(frame);
        let start = self.addr_of(frame.index);
        let offset = addr.checked_sub(start)?;
        if offset.checked_add(len as u64)? > self.frame_size as u64 {
            return None;
        }
        // SAFETY: the range lies inside frame `frame.index`, which `check` placed inside the
        // mapping. The token proves we own the frame: the kernel does not write it, and no
        // mutable slice over it exists, since that needs the token borrowed exclusively.
        Some(unsafe { std::slice::from_raw_parts(self.base().add(addr as usize), len as usize) })
    }

    /// The whole owned `frame`, writable, for as long as the token stays borrowed. Two
    /// writable slices over one frame cannot coexist:
    ///
    /// ```compile_fail
    /// # use synack::xdp::umem::Umem;
    /// let mut umem = Umem::new(1, 2048).unwrap();
    /// let mut frame = umem.take_frames().pop().unwrap();
    /// let a = umem.frame_mut(&mut frame);
    /// let b = umem.frame_mut(&mut frame); // error: `frame` borrowed mutably twice
    /// a[0] = b[0];
    /// ```
    #[inline]
    pub fn frame_mut<'a>(&'a self, frame: &'a mut OwnedFrame) -> &'a mut [u8] {
        self.check(frame);
        let start = self.addr_of(frame.index) as usize;
        // SAFETY: `check` placed the frame inside the mapping. The token proves we own the
        // frame (the kernel does not touch it), and it is borrowed exclusively for the slice's
        // lifetime, so no other slice over this frame exists meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.base().add(start), self.frame_size as usize) }
    }

    /// A token of another UMEM is a bug in the caller: refuse it before touching memory.
    #[inline]
    fn check(&self, frame: &OwnedFrame) {
        assert!(
            frame.umem == self.id && frame.index < self.frames,
            "frame {} of UMEM {} used with UMEM {}",
            frame.index,
            frame.umem,
            self.id
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_frame_is_handed_out_once() {
        let mut u = Umem::new(4, 2048).unwrap();
        let frames = u.take_frames();
        assert_eq!(
            frames.iter().map(OwnedFrame::index).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert!(u.take_frames().is_empty());
    }

    #[test]
    fn an_owned_frame_is_readable_only_within_itself() {
        let mut u = Umem::new(2, 2048).unwrap();
        let mut frames = u.take_frames();
        let mut f1 = frames.pop().unwrap();
        u.frame_mut(&mut f1)[..3].copy_from_slice(b"abc");
        assert_eq!(u.frame(&f1, 2048, 3), Some(&b"abc"[..]));
        assert_eq!(u.frame(&f1, 2048 + 2000, 48).map(<[u8]>::len), Some(48));
        assert_eq!(u.frame(&f1, 2048 + 2000, 49), None, "runs past the frame");
        assert_eq!(u.frame(&f1, 0, 1), None, "frame 0 is not f1's");
        let addr = u.to_kernel(f1);
        assert_eq!(addr, 2048);
        // SAFETY: test: the address was just given up and no token of it is left.
        let back = unsafe { u.reclaim(addr + 100) }.unwrap();
        assert_eq!(back.index(), 1);
        // SAFETY: test: outside the area, no token is made.
        assert!(unsafe { u.reclaim(4096) }.is_none());
    }

    #[test]
    #[should_panic(expected = "used with UMEM")]
    fn a_frame_of_another_umem_is_refused() {
        let mut a = Umem::new(1, 2048).unwrap();
        let b = Umem::new(1, 2048).unwrap();
        let mut f = a.take_frames().pop().unwrap();
        let _ = b.frame_mut(&mut f);
    }
}
