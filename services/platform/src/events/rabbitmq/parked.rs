//! Operator access to a consumer's parking queue (`<queue>.parked`).

use std::collections::BTreeSet;

use lapin::{
    Channel, Confirmation, Connection,
    message::Delivery,
    options::{
        BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
        ConfirmSelectOptions,
    },
    types::ShortString,
};

use super::{headers, short, unavailable};
use crate::events::{
    bus::{BusError, ParkedMessage, ReplaySelection, parking_queue},
    envelope::Envelope,
};

/// Reads without removing: messages are fetched unacked and handed back with one nack.
pub(super) async fn list(
    conn: &Connection,
    queue: &str,
    limit: usize,
) -> Result<Vec<ParkedMessage>, BusError> {
    let ch = conn.create_channel().await.map_err(unavailable)?;
    let parked = short(&parking_queue(queue))?;
    let mut out = Vec::new();
    let mut held = BTreeSet::new();
    let result = async {
        while out.len() < limit {
            let Some(msg) = ch
                .basic_get(parked.clone(), BasicGetOptions { no_ack: false })
                .await
                .map_err(unavailable)?
            else {
                break;
            };
            held.insert(msg.delivery.delivery_tag);
            out.push(describe(&msg.delivery));
        }
        Ok(())
    }
    .await;
    give_back(&ch, &held).await;
    close(ch).await;
    result.map(|()| out)
}

/// Sends the selected messages back to `queue` (through the default exchange, so only that
/// consumer sees them again) and acks each from the parking queue only after the broker
/// confirmed the copy: a crash in between duplicates a message, never loses one.
pub(super) async fn replay(
    conn: &Connection,
    queue: &str,
    which: &ReplaySelection,
) -> Result<usize, BusError> {
    let ch = conn.create_channel().await.map_err(unavailable)?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(unavailable)?;
    let parked = short(&parking_queue(queue))?;
    let target = short(queue)?;
    let wanted = match which {
        ReplaySelection::All => None,
        ReplaySelection::Ids(ids) => Some(ids.len()),
    };
    let mut replayed = 0;
    let mut held = BTreeSet::new();
    let result = async {
        while wanted.is_none_or(|n| replayed < n) {
            let Some(msg) = ch
                .basic_get(parked.clone(), BasicGetOptions { no_ack: false })
                .await
                .map_err(unavailable)?
            else {
                break;
            };
            let delivery = msg.delivery;
            let id = event_id(&delivery);
            if !which.selects(&id) {
                held.insert(delivery.delivery_tag);
                continue;
            }
            held.insert(delivery.delivery_tag);
            let confirm = ch
                .basic_publish(
                    ShortString::from(""),
                    target.clone(),
                    BasicPublishOptions {
                        // If the consumer queue is gone, the message must stay parked.
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &delivery.data,
                    headers::without_death_headers(&delivery.properties),
                )
                .await
                .map_err(unavailable)?
                .await
                .map_err(unavailable)?;
            match confirm {
                Confirmation::Ack(None) => {
                    ch.basic_ack(delivery.delivery_tag, BasicAckOptions::default())
                        .await
                        .map_err(unavailable)?;
                    held.remove(&delivery.delivery_tag);
                    replayed += 1;
                }
                other => {
                    return Err(BusError::Refused {
                        event_id: id,
                        reason: format!("replay to {queue} not confirmed: {other:?}"),
                    });
                }
            }
        }
        Ok(())
    }
    .await;
    give_back(&ch, &held).await;
    close(ch).await;
    result.map(|()| replayed)
}

async fn give_back(ch: &Channel, held: &BTreeSet<u64>) {
    for tag in held {
        let options = BasicNackOptions {
            multiple: false,
            requeue: true,
        };
        if let Err(e) = ch.basic_nack(*tag, options).await {
            // Closing the channel returns them anyway.
            tracing::debug!(error = %e, "returning parked message");
        }
    }
}

async fn close(ch: Channel) {
    if let Err(e) = ch.close(200, "parked admin done".into()).await {
        tracing::debug!(error = %e, "closing admin channel");
    }
}

fn event_id(d: &Delivery) -> String {
    d.properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_owned())
        .or_else(|| Envelope::from_json(&d.data).ok().map(|e| e.id().to_owned()))
        .unwrap_or_default()
}

fn describe(d: &Delivery) -> ParkedMessage {
    let reason = d
        .properties
        .headers()
        .as_ref()
        .and_then(|h| headers::header_str(h, "x-first-death-reason"))
        .unwrap_or("unknown")
        .to_owned();
    ParkedMessage {
        event_id: event_id(d),
        envelope: Envelope::from_json(&d.data).ok(),
        body: String::from_utf8_lossy(&d.data).into_owned(),
        reason,
    }
}
