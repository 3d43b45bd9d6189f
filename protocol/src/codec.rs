//! Frame codec: a u32 big-endian body length, then a bincode 2 (serde) body.
//!
//! Every length is checked against the message kind's cap *before* anything
//! is allocated, and bincode itself runs with the same limit so a length
//! field inside the body cannot claim more than the cap either. Decoding
//! returns errors, never panics.

use serde::{de::DeserializeOwned, Serialize};

use crate::enrol::{EnrolReply, EnrolRequest, MAX_ENROL_REPLY_BYTES, MAX_ENROL_REQUEST_BYTES};
use crate::message::{Request, Response};

/// Bytes of the length prefix.
pub const HEADER_BYTES: usize = 4;
/// Largest request body: requests are small (policies are the largest).
pub const MAX_REQUEST_BODY_BYTES: usize = 64 * 1024;
/// Largest response body: a batch of records or, later, an image.
pub const MAX_RESPONSE_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Why a frame could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("message body of {len_bytes} bytes exceeds the {cap_bytes}-byte cap")]
    TooLarge { len_bytes: usize, cap_bytes: usize },
    #[error("message could not be encoded: {0}")]
    Bincode(#[from] bincode::error::EncodeError),
}

/// Why bytes from a peer are not a valid frame.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("frame length {len_bytes} exceeds the {cap_bytes}-byte cap")]
    TooLarge { len_bytes: u64, cap_bytes: usize },
    #[error("frame truncated: need {needed_bytes} bytes, have {available_bytes}")]
    Truncated {
        needed_bytes: usize,
        available_bytes: usize,
    },
    #[error("frame body has {trailing_bytes} trailing bytes after the message")]
    TrailingBytes { trailing_bytes: usize },
    #[error("malformed message: {0}")]
    Malformed(#[from] bincode::error::DecodeError),
}

/// A message kind that travels in frames, with its own size cap.
pub trait WireMessage: Serialize + DeserializeOwned + Sized {
    /// Largest body this kind may have; checked before allocation.
    const MAX_BODY_BYTES: usize;

    /// Encodes the body only (no length prefix).
    fn encode_body(&self) -> Result<Vec<u8>, EncodeError>;

    /// Decodes a body whose length was already checked against the cap.
    /// The whole body must be one message.
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError>;
}

macro_rules! wire_message {
    ($ty:ty, $cap:ident) => {
        impl WireMessage for $ty {
            const MAX_BODY_BYTES: usize = $cap;

            fn encode_body(&self) -> Result<Vec<u8>, EncodeError> {
                let config = bincode::config::standard().with_limit::<$cap>();
                let body = bincode::serde::encode_to_vec(self, config)?;
                check_len(body.len() as u64, $cap).map_err(|_| EncodeError::TooLarge {
                    len_bytes: body.len(),
                    cap_bytes: $cap,
                })?;
                Ok(body)
            }

            fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
                check_len(body.len() as u64, $cap)?;
                let config = bincode::config::standard().with_limit::<$cap>();
                let (message, read_bytes) = bincode::serde::decode_from_slice(body, config)?;
                if read_bytes != body.len() {
                    return Err(DecodeError::TrailingBytes {
                        trailing_bytes: body.len() - read_bytes,
                    });
                }
                Ok(message)
            }
        }
    };
}

wire_message!(Request, MAX_REQUEST_BODY_BYTES);
wire_message!(Response, MAX_RESPONSE_BODY_BYTES);
wire_message!(EnrolRequest, MAX_ENROL_REQUEST_BYTES);
wire_message!(EnrolReply, MAX_ENROL_REPLY_BYTES);

fn check_len(len_bytes: u64, cap_bytes: usize) -> Result<usize, DecodeError> {
    match usize::try_from(len_bytes) {
        Ok(len) if len <= cap_bytes => Ok(len),
        _ => Err(DecodeError::TooLarge {
            len_bytes,
            cap_bytes,
        }),
    }
}

/// Encodes a whole frame: length prefix and body.
pub fn encode_frame<M: WireMessage>(message: &M) -> Result<Vec<u8>, EncodeError> {
    let body = message.encode_body()?;
    let len = u32::try_from(body.len()).map_err(|_| EncodeError::TooLarge {
        len_bytes: body.len(),
        cap_bytes: M::MAX_BODY_BYTES,
    })?;
    let mut frame = Vec::with_capacity(HEADER_BYTES + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Reads a length prefix and checks it against `M`'s cap, so a stream
/// reader can allocate exactly the body and no more.
pub fn body_len<M: WireMessage>(header: [u8; HEADER_BYTES]) -> Result<usize, DecodeError> {
    check_len(u64::from(u32::from_be_bytes(header)), M::MAX_BODY_BYTES)
}

/// Decodes one frame from the start of `bytes`; returns the message and the
/// number of bytes the frame took.
pub fn decode_frame<M: WireMessage>(bytes: &[u8]) -> Result<(M, usize), DecodeError> {
    let header = bytes
        .first_chunk::<HEADER_BYTES>()
        .ok_or(DecodeError::Truncated {
            needed_bytes: HEADER_BYTES,
            available_bytes: bytes.len(),
        })?;
    let len = body_len::<M>(*header)?;
    let end = HEADER_BYTES + len;
    let body = bytes.get(HEADER_BYTES..end).ok_or(DecodeError::Truncated {
        needed_bytes: end,
        available_bytes: bytes.len(),
    })?;
    Ok((M::decode_body(body)?, end))
}
