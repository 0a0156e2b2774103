//! Sending mails over SMTP: the thin shell around lettre.

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};

use super::Mail;
use crate::config::{NotificationsConfig, SmtpTls};

/// Why a mail was not sent. The texts name the server, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("SMTP TLS setup for {host}: {message}")]
    Tls { host: String, message: String },
    #[error("cannot build the mail to {to}: {message}")]
    Build { to: String, message: String },
    #[error("cannot send the mail to {to} through {server}: {message}")]
    Send { to: String, server: String, message: String },
}

/// An SMTP client for one configuration.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

impl Mailer {
    pub fn new(config: &NotificationsConfig) -> Result<Mailer, NotifyError> {
        let host = config.smtp_host.clone();
        let tls_error = |message: String| NotifyError::Tls { host: host.clone(), message };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(config.smtp_port)
            .timeout(Some(config.timeout));
        if config.tls != SmtpTls::None {
            let mut params = TlsParameters::builder(host.clone());
            if let Some(file) = &config.ca_file {
                let pem = std::fs::read(file).map_err(|e| tls_error(format!("{}: {e}", file.display())))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| tls_error(format!("{}: {e}", file.display())))?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|e| tls_error(e.to_string()))?;
            // STARTTLS is required, never opportunistic: no fallback to clear text.
            builder = builder.tls(match config.tls {
                SmtpTls::Tls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        if let Some(c) = &config.credentials {
            builder = builder.credentials(Credentials::new(c.username.clone(), c.password.expose().clone()));
        }
        // Validated when the configuration loaded.
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| NotifyError::Build { to: String::new(), message: format!("from {:?}: {e}", config.from) })?;
        Ok(Mailer { transport: builder.build(), from, server: format!("{}:{}", config.smtp_host, config.smtp_port) })
    }

    pub async fn send(&self, mail: &Mail) -> Result<(), NotifyError> {
        let to = mail.to.to_string();
        let build = |message: String| NotifyError::Build { to: to.clone(), message };
        let recipient = to.parse::<Mailbox>().map_err(|e| build(e.to_string()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(recipient)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| build(e.to_string()))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| NotifyError::Send {
            to: to.clone(),
            server: self.server.clone(),
            message: crate::error_chain::error_chain(&e),
        })
    }
}
