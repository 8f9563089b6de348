//! Server-chosen QUIC connection IDs that name their shard.
//!
//! Layout (16 bytes): shard id (u16, big-endian), then 14 random bytes. A
//! packet whose destination CID names another shard reached this one by
//! accident (NAT rebinding, migration, a changed SO_REUSEPORT group) and is
//! forwarded to that shard's mailbox instead of being dropped.

use ring::rand::{SecureRandom, SystemRandom};

/// Length of every connection ID this server issues.
pub const LOCAL_CID_LEN: usize = 16;
const SHARD_BYTES: usize = 2;

/// Issues connection IDs for one shard.
pub struct CidIssuer {
    shard: u16,
    random: SystemRandom,
}

impl CidIssuer {
    pub fn new(shard: u16) -> CidIssuer {
        CidIssuer { shard, random: SystemRandom::new() }
    }

    /// A fresh connection ID naming this shard.
    pub fn issue(&self) -> [u8; LOCAL_CID_LEN] {
        let mut cid = [0u8; LOCAL_CID_LEN];
        cid[..SHARD_BYTES].copy_from_slice(&self.shard.to_be_bytes());
        self.random.fill(&mut cid[SHARD_BYTES..]).expect("the system random source works");
        cid
    }

    /// A stateless reset token for a connection ID (random, not derived:
    /// resets are not offered for lost state across restarts yet).
    pub fn reset_token(&self) -> u128 {
        let mut token = [0u8; 16];
        self.random.fill(&mut token).expect("the system random source works");
        u128::from_be_bytes(token)
    }
}

/// The shard a destination connection ID names, if it is one of ours.
pub fn shard_of(dcid: &[u8]) -> Option<u16> {
    if dcid.len() != LOCAL_CID_LEN {
        return None;
    }
    Some(u16::from_be_bytes([dcid[0], dcid[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_ids_name_their_shard_and_differ() {
        let issuer = CidIssuer::new(513);
        let first = issuer.issue();
        let second = issuer.issue();
        assert_eq!(shard_of(&first), Some(513));
        assert_ne!(first, second);
        assert_eq!(shard_of(&first[..8]), None, "client-chosen lengths are not ours");
    }
}
