//! The ticketing systems a partner can choose (shared by browser and server): their stored name and their label.
//! Adding a system is one variant here and one registration in `crate::systems::Ticketing::from_config`.

use serde::{Deserialize, Serialize};

/// The Autotask ticket user-defined field that holds Dark Web ID's dedupe key unless the partner names another
/// (here, shared by the wizard in the browser and the Autotask client on the server).
pub const AUTOTASK_DEFAULT_DEDUPE_UDF: &str = "DWID Reference";

/// A PSA the dashboard creates tickets in. Integrations saved before a choice existed are ConnectWise's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum System {
    #[default]
    ConnectWise,
    Autotask,
}

impl System {
    /// Every system, in the wizard's order.
    pub const ALL: &'static [System] = &[System::ConnectWise, System::Autotask];

    /// The value of the `integrations.system` column.
    pub fn as_db(self) -> &'static str {
        match self {
            System::ConnectWise => "connectwise",
            System::Autotask => "autotask",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_db() == value)
    }

    /// The product's name, as partners know it.
    pub fn label(self) -> &'static str {
        match self {
            System::ConnectWise => "ConnectWise Manage",
            System::Autotask => "Autotask PSA",
        }
    }

    /// What the wizard's first step says of it.
    pub fn description(self) -> &'static str {
        match self {
            System::ConnectWise => "ConnectWise Manage (ConnectWise PSA) service tickets",
            System::Autotask => "Autotask PSA (Datto) tickets, through its REST API",
        }
    }

    /// The short name the Integrations table shows.
    pub fn short_label(self) -> &'static str {
        match self {
            System::ConnectWise => "ConnectWise",
            System::Autotask => "Autotask",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        for system in System::ALL {
            assert_eq!(System::from_db(system.as_db()), Some(*system));
        }
        assert_eq!(System::from_db("ConnectWise"), None, "stored names are exact");
    }
}
