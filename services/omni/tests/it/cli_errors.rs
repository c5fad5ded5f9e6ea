use omni::error::CliError;

use crate::support::Stack;

#[tokio::test]
async fn a_bad_request_shows_the_field_violation() {
    let stack = Stack::start().await;
    let err = stack
        .omni(
            Some(&stack.token("channel:web")),
            &[
                "order",
                "place",
                "--channel",
                "web",
                "--sku",
                "TEE-WHITE-M:0",
                "--pickup",
                "store-sh-jingan",
            ],
        )
        .await
        .expect_err("quantity 0 is refused");
    let text = err.to_string();
    assert!(matches!(err, CliError::Refused(_)), "{text}");
    assert!(text.starts_with("INVALID_ARGUMENT: "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("field ") && l.contains("lines[0].quantity")),
        "{text}"
    );
    stack.stop_and_clean().await;
}

#[tokio::test]
async fn bad_command_lines_are_usage_errors_before_any_call() {
    let stack = Stack::start().await;
    for args in [
        &[
            "order",
            "place",
            "--channel",
            "web",
            "--sku",
            "MUG",
            "--pickup",
            "s",
        ][..],
        &["order", "place", "--channel", "web", "--sku", "MUG:1"][..],
        &["token", "mint", "--role", "root"][..],
    ] {
        let err = stack.omni(None, args).await.expect_err("refused");
        assert!(matches!(err, CliError::Usage(_)), "{args:?}: {err}");
    }
    stack.stop_and_clean().await;
}

#[tokio::test]
async fn calls_without_a_token_are_unauthenticated() {
    let stack = Stack::start().await;
    let err = stack
        .omni(None, &["locations", "list"])
        .await
        .expect_err("no token");
    assert!(err.to_string().starts_with("UNAUTHENTICATED: "), "{err}");
    stack.stop_and_clean().await;
}

#[tokio::test]
async fn parked_messages_need_the_broker_and_say_so() {
    let stack = Stack::start().await;
    // An empty URL stands for "unset" even when the test process has AMQP_URL.
    let err = stack
        .omni(
            None,
            &["events", "parked", "member.orders", "--amqp-url", ""],
        )
        .await
        .expect_err("no broker");
    assert!(matches!(err, CliError::Setup(_)), "{err}");
    assert!(err.to_string().contains("AMQP_URL"), "{err}");
    assert!(err.to_string().contains("embedded mode"), "{err}");
    stack.stop_and_clean().await;
}
