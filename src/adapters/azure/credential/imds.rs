//! Whether Azure's instance metadata service answers: what `auto` asks when the environment
//! names no credential (https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service).

use std::time::Duration;

/// The instance metadata service's well-known address (the same one `azure_identity` uses).
pub const IMDS_PROBE_URL: &str = "http://169.254.169.254/metadata/instance?api-version=2021-02-01";

/// Whether Azure's instance metadata service answers at `url` within `timeout`.
pub async fn imds_answers(url: &str, timeout: Duration) -> bool {
    let Ok(client) = reqwest::Client::builder().timeout(timeout).no_proxy().build() else {
        return false;
    };
    match client.get(url).header("Metadata", "true").send().await {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A black hole where IMDS should be: it accepts the probe's request and never answers.
    /// The probe must give up by itself (its timeout) and say IMDS is not there; without the
    /// timeout it would wait forever, which the watchdog turns into a failure.
    #[tokio::test]
    async fn imds_probe_gives_up_on_a_silent_endpoint() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (request_tx, request_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = request_tx.send(String::from_utf8_lossy(&request).into_owned());
            // Hold the connection open, silent, until the probe hangs up.
            let _ = socket.read(&mut buf).await;
        });
        let url = format!("http://127.0.0.1:{port}/metadata/instance?api-version=2021-02-01");
        let answered = tokio::time::timeout(Duration::from_secs(60), imds_answers(&url, Duration::from_millis(200)))
            .await
            .expect("the probe gave up by itself");
        assert!(!answered, "a silent endpoint is not IMDS");
        let request = request_rx.await.expect("the probe reached the endpoint");
        assert!(request.starts_with("GET /metadata/instance"), "{request}");
        assert!(request.to_ascii_lowercase().contains("metadata: true"), "{request}");
    }

    #[tokio::test]
    async fn imds_probe_of_a_closed_port_says_no() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert!(!imds_answers(&format!("http://127.0.0.1:{port}/metadata"), Duration::from_secs(5)).await);
    }
}
