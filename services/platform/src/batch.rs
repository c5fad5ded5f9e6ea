//! Group writes: callers queue what they want written, and one task starts a write as soon as
//! one of a few slots is free, taking everything queued by then. Under load one round trip
//! serves many callers; a lone caller waits for nothing but its own write.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

/// How much one write takes and how many may be on the wire at once.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_per_write: usize,
    /// One write fills while the others wait for the database.
    pub in_flight: usize,
}

/// Runs until `waiting` closes. Each queued item passes `admit` when its write is about to
/// start (it may answer the caller itself and drop out); `write` gets each batch and runs as a
/// task of its own, holding its slot until it ends.
pub async fn write_queued<T, Admit, Write, Written>(
    mut waiting: mpsc::Receiver<T>,
    limits: BatchLimits,
    mut admit: Admit,
    write: Write,
) where
    Admit: FnMut(T) -> Option<T>,
    Write: Fn(Vec<T>) -> Written,
    Written: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.in_flight.max(1)));
    while let Some(first) = waiting.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // Gathered only once a write may start, so what queued during the wait goes with it.
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(item) = next.take() {
            batch.extend(admit(item));
            if batch.len() < limits.max_per_write {
                next = waiting.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        let written = write(batch);
        tokio::spawn(async move {
            written.await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn what_queues_while_a_write_is_in_flight_goes_in_the_next_one() {
        let (queue, waiting) = mpsc::channel(64);
        let batches = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let gate = Arc::new(Semaphore::new(0));
        let writer = {
            let batches = batches.clone();
            let gate = gate.clone();
            tokio::spawn(write_queued(
                waiting,
                BatchLimits {
                    max_per_write: 3,
                    in_flight: 1,
                },
                |n| (n != 99).then_some(n),
                move |batch| {
                    let batches = batches.clone();
                    let gate = gate.clone();
                    async move {
                        batches.lock().unwrap().push(batch);
                        gate.acquire().await.unwrap().forget();
                    }
                },
            ))
        };
        queue.send(1).await.unwrap();
        while batches.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        // The first write holds the only slot: these wait, then go three at a time.
        for n in [2, 99, 3, 4, 5] {
            queue.send(n).await.unwrap();
        }
        gate.add_permits(3);
        while batches.lock().unwrap().len() < 3 {
            tokio::task::yield_now().await;
        }
        drop(queue);
        writer.await.unwrap();
        assert_eq!(
            *batches.lock().unwrap(),
            vec![vec![1], vec![2, 3, 4], vec![5]],
            "one write at a time, up to three items each, 99 not admitted"
        );
    }
}
