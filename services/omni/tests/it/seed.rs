use omni::seed::{LOCATIONS, SeedOutcome};

use crate::support::{Stack, field};

#[tokio::test]
async fn first_start_seeds_the_catalogue_and_a_restart_keeps_it() {
    let stack = Stack::start().await;
    assert!(matches!(
        stack.running().seeded(),
        SeedOutcome::Seeded { locations, .. } if *locations == LOCATIONS.len()
    ));
    let listed = stack.admin(&["locations", "list"]).await;
    for l in LOCATIONS {
        assert!(listed.contains(l.id), "{} missing from:\n{listed}", l.id);
    }
    // The marketplace sells warehouse stock only.
    let market = stack
        .admin(&["availability", "TEE-WHITE-M", "--channel", "marketplace"])
        .await;
    assert!(market.contains("wh-shanghai"), "{market}");
    assert!(!market.contains("store-"), "{market}");
    let web = stack
        .admin(&["availability", "TEE-WHITE-M", "--channel", "web"])
        .await;
    assert!(web.contains("store-sh-jingan"), "{web}");
    let balance = stack.admin(&["member", "balance", "+8613800138000"]).await;
    assert!(
        field(&balance, "balance").parse::<i64>().unwrap() > 0,
        "{balance}"
    );
    let old_token = stack.running().admin_token().to_owned();

    let dir = stack.stop().await;
    let again = Stack::start_in(dir).await;
    assert_eq!(again.running().seeded(), &SeedOutcome::AlreadyPresent);
    // Same secret file, so a token from before the restart is still accepted.
    let shown = again
        .omni(Some(&old_token), &["locations", "show", "wh-hangzhou"])
        .await
        .expect("old token accepted");
    assert_eq!(field(&shown, "time zone"), "Asia/Shanghai");
    again.stop_and_clean().await;
}

#[tokio::test]
async fn json_output_is_proto3_json() {
    let stack = Stack::start().await;
    let text = stack
        .admin(&["--json", "locations", "show", "store-sz-guanqian"])
        .await;
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(json["location"]["kind"], "LOCATION_KIND_STORE");
    assert_eq!(json["location"]["timeZone"], "Asia/Shanghai");
    stack.stop_and_clean().await;
}
