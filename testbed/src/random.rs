//! Random bytes from the kernel, for unique names and traffic markers.

use std::fs::File;
use std::io::Read;

use crate::{Error, Result};

/// Fills an array from `/dev/urandom`.
pub(crate) fn bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Error::io("cannot read /dev/urandom", e))?;
    Ok(buf)
}
