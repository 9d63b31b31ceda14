//! The UMEM: one memory area cut into equal frames, registered with the kernel. Frames are
//! named by their byte address in the area.
//!
//! Ownership of each frame is tracked outside this type (see `socket.rs`): at any time a frame
//! is in exactly one place: the fill ring, the kernel, the RX batch being processed, the TX free
//! list, the TX ring, or the completion ring. That invariant is what makes `frame_mut` sound.

use super::sys::Mapping;

pub struct Umem {
    map: Mapping,
    frame_size: u32,
    frames: u32,
}

impl Umem {
    pub fn new(frames: u32, frame_size: u32) -> Result<Umem, String> {
        if !(frame_size == 2048 || frame_size == 4096) {
            return Err(format!("frame size {frame_size} must be 2048 or 4096"));
        }
        if frames == 0 {
            return Err("a UMEM needs at least one frame".into());
        }
        let len = frames as usize * frame_size as usize;
        let map = Mapping::anonymous(len)
            .map_err(|e| format!("cannot allocate {len} bytes of UMEM: {e}"))?;
        Ok(Umem {
            map,
            frame_size,
            frames,
        })
    }

    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }
    pub fn frames(&self) -> u32 {
        self.frames
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn base(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// The address of frame number `i`.
    pub fn addr_of(&self, i: u32) -> u64 {
        i as u64 * self.frame_size as u64
    }

    /// The start of the frame that holds `addr` (descriptors may point past a headroom).
    pub fn frame_start(&self, addr: u64) -> u64 {
        addr - addr % self.frame_size as u64
    }

    /// `len` bytes at `addr`, if they lie inside one frame of the area.
    pub fn frame(&self, addr: u64, len: u32) -> Option<&[u8]> {
        let fs = self.frame_size as u64;
        if addr.checked_add(len as u64)? > self.map.len() as u64 || addr % fs + len as u64 > fs {
            return None;
        }
        // SAFETY: the range was checked to lie in the mapping; frames given to us by the RX
        // ring are not written by the kernel until we hand them back through the fill ring.
        Some(unsafe { std::slice::from_raw_parts(self.base().add(addr as usize), len as usize) })
    }

    /// The whole frame starting at `addr`, writable.
    ///
    /// # Safety
    /// `addr` must be a frame start inside the area, and the caller must own that frame (it
    /// is in no ring and no other live slice covers it) for as long as the slice lives.
    // Frames are owned one by one (see the module doc), not through `&mut Umem`.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn frame_mut(&self, addr: u64) -> &mut [u8] {
        debug_assert!(addr.is_multiple_of(self.frame_size as u64) && addr < self.map.len() as u64);
        // SAFETY: in bounds by the caller's contract; exclusive by frame ownership.
        unsafe {
            std::slice::from_raw_parts_mut(self.base().add(addr as usize), self.frame_size as usize)
        }
    }
}
