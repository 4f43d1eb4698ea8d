#[rmi::expose]
pub trait Shapes {
    async fn count(&self) -> u64;
}

#[rmi::expose]
pub trait Health {
    async fn alive(&self) -> bool;
}

struct Service;

impl Shapes for Service {
    async fn count(&self) -> u64 {
        0
    }
}

impl Health for Service {
    async fn alive(&self) -> bool {
        true
    }
}

async fn serve() -> Result<(), rmi::Error> {
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    daemon.register(Service)?;
    Ok(())
}

fn main() {
    let _ = serve;
}
