//! `omni member enrol|link|balance|ledger|profile`. A member is named by id, phone (+86…) or
//! e-mail; the latter two are resolved first.

use clap::Subcommand;
use omni_proto::common::v1::{Identity, IdentityType};
use omni_proto::member::v1 as pb;

use super::connect::Authed;
use super::draft::identity_of;
use super::key_or_new;
use crate::cli::connect::Endpoints;
use crate::error::CliError;
use crate::output::{Output, Table, fields, label, money, timestamp};

type Client = pb::member_service_client::MemberServiceClient<Authed>;

#[derive(Debug, Subcommand)]
pub enum MemberCmd {
    /// Enrol a new member.
    Enrol {
        #[arg(long)]
        name: String,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Channel the member enrols through.
        #[arg(long)]
        channel: String,
        #[arg(long)]
        key: Option<String>,
    },
    /// Add an identity (phone, e-mail, POS card) to a member.
    Link {
        member: String,
        #[arg(long, group = "identity", required = true)]
        phone: Option<String>,
        #[arg(long, group = "identity")]
        email: Option<String>,
        #[arg(long, group = "identity")]
        pos_card: Option<String>,
    },
    /// Points balance, pending redemptions and next expiries.
    Balance { member: String },
    /// The points ledger, newest first.
    Ledger {
        member: String,
        #[arg(long, default_value_t = 50)]
        limit: i32,
    },
    /// Lifecycle, RFM, channels used, tier.
    Profile { member: String },
}

pub async fn run(
    cmd: MemberCmd,
    endpoints: &Endpoints,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let mut client = endpoints.member()?;
    match cmd {
        MemberCmd::Enrol {
            name,
            phone,
            email,
            channel,
            key,
        } => {
            let identities = [
                phone.map(|v| identity(IdentityType::Phone, v)),
                email.map(|v| identity(IdentityType::Email, v)),
            ]
            .into_iter()
            .flatten()
            .collect();
            let response = client
                .enroll_member(pb::EnrollMemberRequest {
                    idempotency_key: key_or_new(key),
                    name,
                    identities,
                    channel_id: channel,
                })
                .await?
                .into_inner();
            out.show(&response, |r| {
                r.member.as_ref().map(member).unwrap_or_default()
            })
        }
        MemberCmd::Link {
            member: who,
            phone,
            email,
            pos_card,
        } => {
            let new = match (phone, email, pos_card) {
                (Some(v), _, _) => identity(IdentityType::Phone, v),
                (_, Some(v), _) => identity(IdentityType::Email, v),
                (_, _, Some(v)) => identity(IdentityType::PosCard, v),
                _ => return Err(CliError::usage("give --phone, --email or --pos-card")),
            };
            let member_id = resolve(&mut client, &who).await?;
            let response = client
                .link_identity(pb::LinkIdentityRequest {
                    member_id,
                    identity: Some(new),
                })
                .await?
                .into_inner();
            out.show(&response, |r| {
                r.member.as_ref().map(member).unwrap_or_default()
            })
        }
        MemberCmd::Balance { member: who } => {
            let member_id = resolve(&mut client, &who).await?;
            let response = client
                .get_balance(pb::GetBalanceRequest {
                    member_id: member_id.clone(),
                })
                .await?
                .into_inner();
            out.show(&response, |r| {
                let mut text = fields(&[
                    ("member", member_id.clone()),
                    ("balance", r.balance.to_string()),
                    (
                        "pending redemptions",
                        r.pending_redemption_points.to_string(),
                    ),
                ]);
                for e in &r.next_expiries {
                    text.push_str(&format!(
                        "  {} points expire {}\n",
                        e.points,
                        timestamp(e.expires_at.as_ref())
                    ));
                }
                text
            })
        }
        MemberCmd::Ledger { member: who, limit } => {
            let member_id = resolve(&mut client, &who).await?;
            let response = client
                .list_ledger(pb::ListLedgerRequest {
                    member_id,
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            out.show(&response, |r| {
                let mut table = Table::new([
                    "WHEN",
                    "KIND",
                    "POINTS",
                    "BALANCE",
                    "CHANNEL",
                    "ORDER/RECEIPT",
                    "REASON",
                ]);
                for e in &r.entries {
                    table.row(vec![
                        timestamp(e.created_at.as_ref()),
                        label(
                            pb::LedgerEntryKind::try_from(e.kind).map(|k| k.as_str_name()),
                            "LEDGER_ENTRY_KIND_",
                            e.kind,
                        ),
                        format!("{:+}", e.points),
                        e.balance_after.to_string(),
                        e.channel_id.clone(),
                        if e.order_id.is_empty() {
                            e.receipt_id.clone()
                        } else {
                            e.order_id.clone()
                        },
                        e.reason.clone(),
                    ]);
                }
                table.render()
            })
        }
        MemberCmd::Profile { member: who } => {
            let member_id = resolve(&mut client, &who).await?;
            let response = client
                .get_member_profile(pb::GetMemberProfileRequest { member_id })
                .await?
                .into_inner();
            out.show(&response, |r| {
                let Some(p) = &r.profile else {
                    return String::new();
                };
                let rfm = p
                    .rfm
                    .as_ref()
                    .map(|s| format!("R{} F{} M{}", s.recency, s.frequency, s.monetary))
                    .unwrap_or_else(|| "-".to_owned());
                fields(&[
                    ("member", p.member_id.clone()),
                    (
                        "lifecycle",
                        label(
                            pb::LifecycleStage::try_from(p.lifecycle).map(|s| s.as_str_name()),
                            "LIFECYCLE_STAGE_",
                            p.lifecycle,
                        ),
                    ),
                    ("tier", tier(p.tier)),
                    ("rfm", rfm),
                    ("channels used", p.channels_used.join(", ")),
                    ("cross-channel", p.cross_channel.to_string()),
                    ("spend 12 months", money(p.spend_12m.as_ref())),
                    ("orders 12 months", p.orders_12m.to_string()),
                    ("last order", timestamp(p.last_order_at.as_ref())),
                ])
            })
        }
    }
}

fn identity(kind: IdentityType, value: String) -> Identity {
    Identity {
        r#type: kind as i32,
        value,
    }
}

/// The member id behind what the person typed.
async fn resolve(client: &mut Client, who: &str) -> Result<String, CliError> {
    let Some(identity) = identity_of(who) else {
        return Ok(who.to_owned());
    };
    let member = client
        .resolve_member(pb::ResolveMemberRequest {
            identity: Some(identity),
        })
        .await?
        .into_inner()
        .member
        .ok_or_else(|| CliError::setup(format!("no member answered for {who}")))?;
    Ok(member.id)
}

fn tier(raw: i32) -> String {
    label(
        pb::Tier::try_from(raw).map(|t| t.as_str_name()),
        "TIER_",
        raw,
    )
}

fn member(m: &pb::Member) -> String {
    let identities = m
        .identities
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                label(
                    IdentityType::try_from(i.r#type).map(|t| t.as_str_name()),
                    "IDENTITY_TYPE_",
                    i.r#type,
                ),
                i.value
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    fields(&[
        ("member", m.id.clone()),
        ("name", m.name.clone()),
        ("tier", tier(m.tier)),
        ("identities", identities),
        ("enrolled via", m.enrolled_channel_id.clone()),
    ])
}
