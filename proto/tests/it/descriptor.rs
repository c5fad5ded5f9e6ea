use std::collections::BTreeSet;

use omni_proto::{FILE_DESCRIPTOR_SET, service_names};
use prost::Message;
use prost_types::{
    DescriptorProto, FileDescriptorProto, FileDescriptorSet, ServiceDescriptorProto,
};

/// The API surface at a glance (ARCHITECTURE.md §2): every RPC other engineers code against.
const SURFACE: &[(&str, &[&str])] = &[
    (
        service_names::INVENTORY,
        &[
            "UpsertLocation",
            "GetLocation",
            "ListLocations",
            "SetChannelPool",
            "GetChannelPool",
            "AdjustStock",
            "SetSafetyStock",
            "ListMovements",
            "GetAvailability",
            "WatchAvailability",
            "Reserve",
            "ConfirmReservation",
            "Commit",
            "Release",
            "ExtendHold",
            "ConvertHold",
            "GetReservation",
            "CheckInvariants",
        ],
    ),
    (
        service_names::ORDERS,
        &[
            "PlaceOrder",
            "PlanOrder",
            "GetOrder",
            "ListOrders",
            "CancelOrder",
            "ExplainRouting",
            "GetRoutingProfile",
            "UpdateRoutingProfile",
            "SimulatePolicy",
        ],
    ),
    (
        service_names::STORE,
        &[
            "ListPickups",
            "MarkReady",
            "ConfirmPickup",
            "RejectLine",
            "AcceptReturn",
        ],
    ),
    (
        service_names::MEMBER,
        &[
            "EnrollMember",
            "GetMember",
            "LinkIdentity",
            "ResolveMember",
            "MergeMembers",
            "GetBalance",
            "ListLedger",
            "RedeemPoints",
            "ConfirmRedemption",
            "RecordPurchase",
            "RecordReturn",
            "GetMemberProfile",
            "ListMembers",
            "GetChannelReport",
            "ExportMember",
            "EraseMember",
        ],
    ),
];

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap()
}

fn find_service<'a>(
    set: &'a FileDescriptorSet,
    full_name: &str,
) -> (&'a FileDescriptorProto, &'a ServiceDescriptorProto) {
    set.file
        .iter()
        .find_map(|file| {
            file.service
                .iter()
                .find(|s| format!("{}.{}", file.package(), s.name()) == full_name)
                .map(|s| (file, s))
        })
        .unwrap_or_else(|| panic!("service {full_name} is not in the descriptor set"))
}

fn find_message<'a>(set: &'a FileDescriptorSet, type_name: &str) -> &'a DescriptorProto {
    set.file
        .iter()
        .find_map(|file| {
            file.message_type
                .iter()
                .find(|m| format!(".{}.{}", file.package(), m.name()) == type_name)
        })
        .unwrap_or_else(|| panic!("message {type_name} is not in the descriptor set"))
}

#[test]
fn every_rpc_of_the_surface_exists_and_nothing_else() {
    let set = descriptor_set();
    for (service, rpcs) in SURFACE {
        let (_, descriptor) = find_service(&set, service);
        let actual: BTreeSet<&str> = descriptor.method.iter().map(|m| m.name()).collect();
        let expected: BTreeSet<&str> = rpcs.iter().copied().collect();
        assert_eq!(actual, expected, "RPCs of {service}");
    }
}

#[test]
fn each_rpc_has_its_own_request_and_response_message() {
    let set = descriptor_set();
    for (service, _) in SURFACE {
        let (file, descriptor) = find_service(&set, service);
        for method in &descriptor.method {
            let prefix = format!(".{}.{}", file.package(), method.name());
            assert_eq!(method.input_type(), format!("{prefix}Request"));
            assert_eq!(method.output_type(), format!("{prefix}Response"));
        }
    }
}

#[test]
fn only_watch_availability_streams() {
    let set = descriptor_set();
    let streaming: Vec<String> = SURFACE
        .iter()
        .flat_map(|(service, _)| {
            let (_, descriptor) = find_service(&set, service);
            descriptor
                .method
                .iter()
                .filter(|m| m.client_streaming() || m.server_streaming())
                .map(|m| {
                    format!(
                        "{}:{}:{}",
                        m.name(),
                        m.client_streaming(),
                        m.server_streaming()
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(streaming, ["WatchAvailability:false:true"]);
}

#[test]
fn every_list_rpc_is_paged() {
    let set = descriptor_set();
    for (service, _) in SURFACE {
        let (_, descriptor) = find_service(&set, service);
        for method in descriptor
            .method
            .iter()
            .filter(|m| m.name().starts_with("List"))
        {
            let request = find_message(&set, method.input_type());
            let response = find_message(&set, method.output_type());
            let has = |message: &DescriptorProto, field: &str| {
                message.field.iter().any(|f| f.name() == field)
            };
            assert!(
                has(request, "page_size"),
                "{} lacks page_size",
                method.name()
            );
            assert!(
                has(request, "page_token"),
                "{} lacks page_token",
                method.name()
            );
            assert!(
                has(response, "next_page_token"),
                "{} lacks next_page_token",
                method.name()
            );
        }
    }
}

#[test]
fn well_known_imports_travel_with_the_set_for_reflection_clients() {
    let set = descriptor_set();
    for import in [
        "google/protobuf/timestamp.proto",
        "google/protobuf/duration.proto",
    ] {
        assert!(
            set.file.iter().any(|f| f.name() == import),
            "{import} missing"
        );
    }
}
