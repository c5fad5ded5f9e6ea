//! Who may call what: the one table of the member API's authorization rules.
//!
//! | RPC                                                   | allowed callers                         |
//! |-------------------------------------------------------|-----------------------------------------|
//! | EnrollMember, LinkIdentity                            | any channel, any store, admin           |
//! | GetMember, ResolveMember, GetBalance, ListLedger      | any channel, any store, service:orders, admin |
//! | RedeemPoints, ConfirmRedemption                       | service:orders, admin                   |
//! | RecordPurchase                                        | `store:<store_id of the request>`, admin |
//! | RecordReturn                                          | any store, admin (the request names no store: a return may be taken at any till) |
//! | GetMemberProfile                                      | any channel, admin                      |
//! | MergeMembers, ListMembers, GetChannelReport, ExportMember, EraseMember | admin only     |
//!
//! Without a token verifier (development) every call is allowed. A refusal happens before the
//! handler reads or writes anything, and is logged with the principal (`auth::deny`).

use omni_platform::auth::{self, Principal};
use tonic::{Request, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    EnrollMember,
    GetMember,
    LinkIdentity,
    ResolveMember,
    MergeMembers,
    GetBalance,
    ListLedger,
    RedeemPoints,
    ConfirmRedemption,
    RecordPurchase,
    RecordReturn,
    GetMemberProfile,
    ListMembers,
    GetChannelReport,
    ExportMember,
    EraseMember,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Self::EnrollMember => "EnrollMember",
            Self::GetMember => "GetMember",
            Self::LinkIdentity => "LinkIdentity",
            Self::ResolveMember => "ResolveMember",
            Self::MergeMembers => "MergeMembers",
            Self::GetBalance => "GetBalance",
            Self::ListLedger => "ListLedger",
            Self::RedeemPoints => "RedeemPoints",
            Self::ConfirmRedemption => "ConfirmRedemption",
            Self::RecordPurchase => "RecordPurchase",
            Self::RecordReturn => "RecordReturn",
            Self::GetMemberProfile => "GetMemberProfile",
            Self::ListMembers => "ListMembers",
            Self::GetChannelReport => "GetChannelReport",
            Self::ExportMember => "ExportMember",
            Self::EraseMember => "EraseMember",
        }
    }
}

/// The orders service's principal name.
const ORDERS: &str = "orders";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    ChannelsStoresAdmin,
    ChannelsStoresOrdersAdmin,
    OrdersAdmin,
    /// The store named in the request (`store:<store_id>`), or admin.
    NamedStoreAdmin,
    StoresAdmin,
    ChannelsAdmin,
    AdminOnly,
}

impl Rule {
    pub fn of(method: Method) -> Rule {
        match method {
            Method::EnrollMember | Method::LinkIdentity => Rule::ChannelsStoresAdmin,
            Method::GetMember | Method::ResolveMember | Method::GetBalance | Method::ListLedger => {
                Rule::ChannelsStoresOrdersAdmin
            }
            Method::RedeemPoints | Method::ConfirmRedemption => Rule::OrdersAdmin,
            Method::RecordPurchase => Rule::NamedStoreAdmin,
            Method::RecordReturn => Rule::StoresAdmin,
            Method::GetMemberProfile => Rule::ChannelsAdmin,
            Method::MergeMembers
            | Method::ListMembers
            | Method::GetChannelReport
            | Method::ExportMember
            | Method::EraseMember => Rule::AdminOnly,
        }
    }

    /// What the refusal says is needed.
    fn needs(self) -> &'static str {
        match self {
            Rule::ChannelsStoresAdmin => "a channel, a store or admin",
            Rule::ChannelsStoresOrdersAdmin => "a channel, a store, service:orders or admin",
            Rule::OrdersAdmin => "service:orders or admin",
            Rule::NamedStoreAdmin => "store:<store_id of the request> or admin",
            Rule::StoresAdmin => "a store or admin",
            Rule::ChannelsAdmin => "a channel or admin",
            Rule::AdminOnly => "admin",
        }
    }

    pub fn allows(self, principal: &Principal, store: Option<&str>) -> bool {
        if principal.is_admin() {
            return true;
        }
        let channel = matches!(principal, Principal::Channel(_));
        let any_store = matches!(principal, Principal::Store(_));
        match self {
            Rule::ChannelsStoresAdmin => channel || any_store,
            Rule::ChannelsStoresOrdersAdmin => channel || any_store || principal.is_service(ORDERS),
            Rule::OrdersAdmin => principal.is_service(ORDERS),
            Rule::NamedStoreAdmin => store.is_some_and(|s| principal.is_store(s)),
            Rule::StoresAdmin => any_store,
            Rule::ChannelsAdmin => channel,
            Rule::AdminOnly => false,
        }
    }
}

/// Checks `method`'s rule for the caller of `request`; `store` is the request's store id for
/// rules that name one. `enabled` is false when the server runs without a verifier.
pub fn authorize<T>(
    request: &Request<T>,
    enabled: bool,
    method: Method,
    store: Option<&str>,
) -> Result<(), Status> {
    if !enabled {
        return Ok(());
    }
    let principal = auth::principal(request)?;
    let rule = Rule::of(method);
    if rule.allows(&principal, store) {
        return Ok(());
    }
    // A store refused RecordPurchase is told which store's token it needed, not a placeholder.
    let needed = match (rule, store) {
        (Rule::NamedStoreAdmin, Some(store)) if !store.is_empty() => {
            format!("store:{store} or admin")
        }
        _ => rule.needs().to_owned(),
    };
    Err(auth::deny(&principal, method.name(), &needed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(subject: &str) -> Principal {
        Principal::parse(subject).unwrap()
    }

    #[test]
    fn the_table_holds() {
        let cases = [
            (Method::EnrollMember, "channel:web", None, true),
            (Method::EnrollMember, "store:s1", None, true),
            (Method::EnrollMember, "service:orders", None, false),
            (Method::GetBalance, "service:orders", None, true),
            (Method::GetBalance, "warehouse:w1", None, false),
            (Method::RedeemPoints, "channel:web", None, false),
            (Method::RedeemPoints, "service:orders", None, true),
            (Method::RedeemPoints, "service:inventory", None, false),
            (Method::ConfirmRedemption, "admin", None, true),
            (Method::RecordPurchase, "store:s1", Some("s1"), true),
            (Method::RecordPurchase, "store:s2", Some("s1"), false),
            (Method::RecordPurchase, "channel:web", Some("s1"), false),
            (Method::RecordReturn, "store:s2", None, true),
            (Method::RecordReturn, "channel:web", None, false),
            (Method::GetMemberProfile, "channel:web", None, true),
            (Method::GetMemberProfile, "store:s1", None, false),
            (Method::MergeMembers, "channel:web", None, false),
            (Method::EraseMember, "store:s1", None, false),
            (Method::ExportMember, "admin", None, true),
            (Method::ListMembers, "service:orders", None, false),
            (Method::GetChannelReport, "admin", None, true),
        ];
        for (method, subject, store, allowed) in cases {
            assert_eq!(
                Rule::of(method).allows(&p(subject), store),
                allowed,
                "{subject} calling {method:?}"
            );
        }
    }

    #[test]
    fn development_mode_allows_everything_and_production_needs_a_principal() {
        let request = Request::new(());
        assert!(authorize(&request, false, Method::EraseMember, None).is_ok());
        let status = authorize(&request, true, Method::GetMember, None).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let mut request = Request::new(());
        request.extensions_mut().insert(p("channel:web"));
        let status = authorize(&request, true, Method::EraseMember, None).unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn a_refused_store_is_told_which_store_it_needs() {
        let mut request = Request::new(());
        request.extensions_mut().insert(p("store:s2"));
        let status = authorize(&request, true, Method::RecordPurchase, Some("s1")).unwrap_err();
        assert!(
            status.message().ends_with("requires store:s1 or admin"),
            "{status:?}"
        );
    }
}
