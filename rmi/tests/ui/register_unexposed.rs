#[rmi::expose]
pub trait Greeter {
    async fn welcome_message(&self, name: String) -> String;
}

// Implements no exposed trait.
struct Plain;

async fn serve() -> Result<(), rmi::Error> {
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    daemon.register(Plain)?;
    Ok(())
}

fn main() {
    let _ = serve;
}
