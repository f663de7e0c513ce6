//! Per-client-address slots: the front door counts what each address holds
//! at once (connections, long-polls) against a per-address cap and an
//! overall cap. HTTP plumbing, so it lives in `http`, below `auth`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts what each client address holds at once (connections, or
/// long-polls) against a per-address cap and an overall cap.
pub struct ClientSlots {
    per_client: usize,
    total: usize,
    held: Mutex<(HashMap<IpAddr, usize>, usize)>,
}

/// One held slot; released on drop.
pub struct Slot {
    owner: Arc<ClientSlots>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = lock(&self.owner.held);
        let (map, total) = &mut *held;
        *total = total.saturating_sub(1);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Why a slot was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// This address already holds `per_client` slots.
    Client,
    /// All `total` slots are taken.
    Full,
}

impl ClientSlots {
    /// A counter allowing `per_client` slots per address and `total` overall.
    pub fn new(per_client: usize, total: usize) -> Arc<ClientSlots> {
        Arc::new(ClientSlots {
            per_client: per_client.max(1),
            total: total.max(1),
            held: Mutex::new((HashMap::new(), 0)),
        })
    }

    /// Takes a slot for `ip`, or says why not.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let mut held = lock(&self.held);
        let (map, total) = &mut *held;
        let n = map.entry(ip).or_insert(0);
        if *n >= self.per_client {
            return Err(Refused::Client);
        }
        if *total >= self.total {
            if *n == 0 {
                map.remove(&ip);
            }
            return Err(Refused::Full);
        }
        *n += 1;
        *total += 1;
        Ok(Slot {
            owner: Arc::clone(self),
            ip,
        })
    }

    /// Slots held by `ip` now.
    pub fn held_by(&self, ip: IpAddr) -> usize {
        lock(&self.held).0.get(&ip).copied().unwrap_or(0)
    }

    /// Slots held overall.
    pub fn held(&self) -> usize {
        lock(&self.held).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cap_each_client_and_the_total_and_free_on_drop() {
        let slots = ClientSlots::new(2, 3);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let c: IpAddr = "127.0.0.3".parse().unwrap();
        let a1 = slots.acquire(a).unwrap();
        let _a2 = slots.acquire(a).unwrap();
        assert_eq!(slots.acquire(a).err(), Some(Refused::Client));
        let _b1 = slots.acquire(b).unwrap();
        assert_eq!(slots.acquire(c).err(), Some(Refused::Full));
        assert_eq!(slots.held_by(c), 0, "a refused address holds nothing");
        drop(a1);
        assert_eq!(slots.held_by(a), 1);
        let _c1 = slots.acquire(c).unwrap();
        assert_eq!(slots.held(), 3);
    }
}
