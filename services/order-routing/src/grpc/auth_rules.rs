//! Who may call what: one rule per RPC (issue 8).
//!
//! | RPC | allowed |
//! |---|---|
//! | PlaceOrder, PlanOrder | admin, or `channel:<id>` of the draft's channel |
//! | GetOrder, CancelOrder, ExplainRouting | admin, or the order's channel |
//! | ListOrders | admin (any channel), or a channel listing its own channel |
//! | GetRoutingProfile, UpdateRoutingProfile, SimulatePolicy | admin |
//! | ListPickups, MarkReady, ConfirmPickup, RejectLine, AcceptReturn | admin, or `store:<id>` of the request's store |
//!
//! Without a token verifier (development) every call is allowed. A refusal writes nothing and
//! is logged with the principal.

use omni_platform::auth::{self, Principal};
use tonic::{Request, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    PlaceOrder,
    PlanOrder,
    GetOrder,
    ListOrders,
    CancelOrder,
    ExplainRouting,
    GetRoutingProfile,
    UpdateRoutingProfile,
    SimulatePolicy,
    ListPickups,
    MarkReady,
    ConfirmPickup,
    RejectLine,
    AcceptReturn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Admin, or the channel the resource belongs to.
    ChannelOrAdmin,
    /// Admin, or the store named in the request.
    StoreOrAdmin,
    AdminOnly,
}

pub fn rule(method: Method) -> Rule {
    use Method::*;
    match method {
        PlaceOrder | PlanOrder | GetOrder | ListOrders | CancelOrder | ExplainRouting => {
            Rule::ChannelOrAdmin
        }
        GetRoutingProfile | UpdateRoutingProfile | SimulatePolicy => Rule::AdminOnly,
        ListPickups | MarkReady | ConfirmPickup | RejectLine | AcceptReturn => Rule::StoreOrAdmin,
    }
}

/// Allows or refuses `request` for `method` on the resource owned by `owner` (a channel or a
/// store id; `None` = the request names none, e.g. ListOrders over every channel).
pub fn authorize<T>(
    request: &Request<T>,
    method: Method,
    owner: Option<&str>,
) -> Result<(), Status> {
    // Mounted without the verifier's interceptor: development mode, everything is allowed.
    let Some(principal) = request.extensions().get::<Principal>() else {
        return Ok(());
    };
    if principal.is_admin() {
        return Ok(());
    }
    let allowed = match (rule(method), owner) {
        (Rule::AdminOnly, _) | (_, None) => false,
        (Rule::ChannelOrAdmin, Some(id)) => principal.is_channel(id),
        (Rule::StoreOrAdmin, Some(id)) => principal.is_store(id),
    };
    if allowed {
        Ok(())
    } else {
        let needed = match (rule(method), owner) {
            (Rule::AdminOnly, _) | (_, None) => "admin".to_owned(),
            (Rule::ChannelOrAdmin, Some(id)) => format!("channel:{id} or admin"),
            (Rule::StoreOrAdmin, Some(id)) => format!("store:{id} or admin"),
        };
        Err(auth::deny(principal, &format!("{method:?}"), &needed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(p: Option<Principal>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(p) = p {
            r.extensions_mut().insert(p);
        }
        r
    }

    #[test]
    fn the_table_is_enforced() {
        let web = with(Some(Principal::Channel("web".into())));
        assert!(authorize(&web, Method::PlaceOrder, Some("web")).is_ok());
        assert!(authorize(&web, Method::GetOrder, Some("app")).is_err());
        assert!(authorize(&web, Method::ListOrders, None).is_err());
        assert!(authorize(&web, Method::UpdateRoutingProfile, Some("web")).is_err());
        assert!(authorize(&web, Method::MarkReady, Some("web")).is_err());
        let store = with(Some(Principal::Store("s1".into())));
        assert!(authorize(&store, Method::ConfirmPickup, Some("s1")).is_ok());
        assert!(authorize(&store, Method::ConfirmPickup, Some("s2")).is_err());
        assert!(authorize(&store, Method::PlaceOrder, Some("s1")).is_err());
        let admin = with(Some(Principal::Admin));
        assert!(authorize(&admin, Method::SimulatePolicy, None).is_ok());
        assert!(authorize(&with(None), Method::SimulatePolicy, None).is_ok());
    }

    #[test]
    fn a_refusal_is_permission_denied() {
        let web = with(Some(Principal::Channel("web".into())));
        let err = authorize(&web, Method::GetRoutingProfile, Some("web")).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
    }
}
