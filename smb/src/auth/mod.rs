//! SPNEGO/NTLMSSP authentication (MS-SPNG, MS-NLMP); being implemented.
