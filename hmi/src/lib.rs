//! # takt-hmi
//!
//! The line-side screens of Takt (sequence board, pick station, yard board, gate kiosk, dock
//! screen, supplier view, alarms, KPIs), served by the controller. ISA-101 style: calm grey
//! screens, colour only for state and alarms, touch targets readable at 3 m.
//!
//! Nothing is here yet: the screens arrive with the HMI issue. The crate exists so the layout
//! the design fixes is in place and builds.
