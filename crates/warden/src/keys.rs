//! `warden keys rotate-master` and `warden keys finish-rotation`: master-key rotation from
//! the operator's side (the rules are in `warden_core::encryption`).

use std::path::Path;

use anyhow::Result;
use warden_core::encryption::{self, Started, sweep};
use warden_domain::clock::SystemClock;
use warden_server::boot;
use warden_server::config::Config;
use warden_server::logging;

use crate::output::print;

pub async fn rotate_master(config: Config, new_key_file: &Path, batch: u32) -> Result<()> {
    logging::init(&config.log);
    let new_master = boot::read_master_key_file(new_key_file)?;
    let (store, keyring, chain, current) = boot::open_for_rotation(&config).await?;
    let started = encryption::start_rotation(
        &store,
        &keyring,
        &current,
        &new_master,
        &chain,
        &SystemClock,
    )
    .await;
    drop((current, new_master));
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            store.close().await;
            return Err(e.into());
        }
    };
    // The running servers seal with the new version within a second; so does this keyring
    // (it is the one that made it, or it loaded it).
    let target = started.target();
    match started {
        Started::New { .. } => eprintln!(
            "data key version {target}, sealed by the new master key, seals every new value \
             from now on; re-encrypting the stored values"
        ),
        Started::Resumed { .. } => {
            eprintln!("resuming the re-encryption to data key version {target}");
        }
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} values {per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let swept = sweep::run(&store, &keyring, &SystemClock, batch, |done, total| {
        bar.set_length(u64::try_from(total).unwrap_or(0));
        bar.set_position(u64::try_from(done).unwrap_or(0));
    })
    .await;
    bar.finish_and_clear();
    store.close().await;
    let swept = swept.map_err(|e| {
        anyhow::anyhow!("{e}; what was re-encrypted is kept: run this again to resume")
    })?;
    print(&format!(
        "every stored value is sealed with data key version {target} ({} re-encrypted by \
         this run). Next: configure the new key ({}) on every node and restart them, then \
         run `warden keys finish-rotation` to delete the older data keys",
        swept.moved,
        new_key_file.display()
    ));
    Ok(())
}

pub async fn finish_rotation(config: Config) -> Result<()> {
    logging::init(&config.log);
    let (store, keyring, chain, configured) = boot::open_for_rotation(&config).await?;
    let finished =
        encryption::finish_rotation(&store, &keyring, &configured, &chain, &SystemClock).await;
    drop(configured);
    store.close().await;
    let finished = finished?;
    print(&format!(
        "rotation finished: data key version {} is the only one left ({} older versions \
         deleted); the old master key opens nothing now — destroy every copy of it",
        finished.version, finished.removed
    ));
    Ok(())
}
