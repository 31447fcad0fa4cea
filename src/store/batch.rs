//! The inbox record format: the bodies one group commit wrote, each as a big-endian `u32`
//! length and the bytes, after a `u32` count.

/// Encodes bodies as one record.
pub fn encode(bodies: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = bodies.iter().map(|b| b.len() + 4).sum::<usize>() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(bodies.len() as u32).to_be_bytes());
    for body in bodies {
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    }
    out
}

/// Splits a record into its bodies; `None` if it is not a well-formed record.
pub fn decode(record: &[u8]) -> Option<Vec<&[u8]>> {
    let (count, mut rest) = split_u32(record)?;
    let mut bodies = Vec::with_capacity(count.min(4096) as usize);
    for _ in 0..count {
        let (len, after) = split_u32(rest)?;
        let len = len as usize;
        if after.len() < len {
            return None;
        }
        bodies.push(&after[..len]);
        rest = &after[len..];
    }
    rest.is_empty().then_some(bodies)
}

/// The number of bodies in a record (0 if malformed).
pub fn count(record: &[u8]) -> usize {
    split_u32(record).map(|(n, _)| n as usize).unwrap_or(0)
}

fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let head: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some((u32::from_be_bytes(head), &bytes[4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_truncation() {
        let bodies = vec![b"{}".to_vec(), Vec::new(), vec![0u8; 1000]];
        let record = encode(&bodies);
        let decoded = decode(&record).expect("decodes");
        assert_eq!(
            decoded,
            bodies.iter().map(Vec::as_slice).collect::<Vec<_>>()
        );
        assert_eq!(count(&record), 3);
        assert!(decode(&record[..record.len() - 1]).is_none());
        assert!(decode(b"\x00\x00").is_none());
    }
}
