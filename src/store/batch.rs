//! The inbox record format: the bodies one group commit wrote, after a big-endian `u32`
//! count; each body as its origin (`u16` length and UTF-8: empty for Meta's webhook,
//! `event:<source>` for a CRM/shop event,
//! `connector:<name>` for a request a connector's system pushed) then a `u32` length and the bytes.

/// Where a body came from.
pub const WHATSAPP: &str = "";

/// The origin of an event from `source`.
pub fn event_origin(source: &str) -> String {
    format!("event:{source}")
}

/// Prefix of the origin of a request a connector's system pushed.
pub const CONNECTOR_PREFIX: &str = "connector:";

/// The origin of a request pushed to `POST /connectors/{name}/webhook`.
pub fn connector_origin(name: &str) -> String {
    format!("{CONNECTOR_PREFIX}{name}")
}

/// Encodes bodies as one record.
pub fn encode(bodies: &[(String, Vec<u8>)]) -> Vec<u8> {
    let total: usize = bodies
        .iter()
        .map(|(o, b)| o.len() + b.len() + 6)
        .sum::<usize>()
        + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(bodies.len() as u32).to_be_bytes());
    for (origin, body) in bodies {
        out.extend_from_slice(&(origin.len() as u16).to_be_bytes());
        out.extend_from_slice(origin.as_bytes());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    }
    out
}

/// Splits a record into (origin, body) pairs; `None` if it is not a well-formed record.
pub fn decode(record: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    let (count, mut rest) = split_u32(record)?;
    let mut bodies = Vec::with_capacity(count.min(4096) as usize);
    for _ in 0..count {
        let head: [u8; 2] = rest.get(..2)?.try_into().ok()?;
        let origin_len = u16::from_be_bytes(head) as usize;
        let origin = std::str::from_utf8(rest.get(2..2 + origin_len)?).ok()?;
        let (len, after) = split_u32(&rest[2 + origin_len..])?;
        let len = len as usize;
        if after.len() < len {
            return None;
        }
        bodies.push((origin, &after[..len]));
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
    fn round_trips_with_origins_and_rejects_truncation() {
        let bodies = vec![
            (WHATSAPP.to_owned(), b"{}".to_vec()),
            (event_origin("shop"), Vec::new()),
            (WHATSAPP.to_owned(), vec![0u8; 1000]),
        ];
        let record = encode(&bodies);
        let decoded = decode(&record).expect("decodes");
        let expected: Vec<(&str, &[u8])> = bodies
            .iter()
            .map(|(o, b)| (o.as_str(), b.as_slice()))
            .collect();
        assert_eq!(decoded, expected);
        assert_eq!(count(&record), 3);
        assert!(decode(&record[..record.len() - 1]).is_none());
        assert!(decode(b"\x00\x00").is_none());
    }
}
