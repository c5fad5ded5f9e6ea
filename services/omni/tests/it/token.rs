use omni::dev_secret;

use crate::support::Stack;

#[tokio::test]
async fn a_minted_token_is_accepted_for_its_own_store_only() {
    let stack = Stack::start().await;
    let secret_file = dev_secret::file_in(&stack.dir);
    let secret_file = secret_file.to_str().expect("utf-8 path");
    let token = stack
        .omni(
            None,
            &[
                "token",
                "mint",
                "--role",
                "store:store-sh-pudong",
                "--ttl",
                "10m",
                "--secret-file",
                secret_file,
            ],
        )
        .await
        .expect("minted");
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    stack
        .omni(Some(token), &["store", "queue", "store-sh-pudong"])
        .await
        .expect("its own store");
    let other = stack
        .omni(Some(token), &["store", "queue", "store-sh-jingan"])
        .await
        .expect_err("another store");
    assert!(
        other.to_string().starts_with("PERMISSION_DENIED: "),
        "{other}"
    );
    stack.stop_and_clean().await;
}
