#pragma once
#include "engine/notify/channel.h"

namespace flowrun {

// `type: email`: the event as a plain-text mail (email_message.h) through SMTP
// (services.smtp, else libcurl). Target: url (smtp://HOST[:PORT] or smtps://...), from, to (a
// string or a list), username and password (optional, AUTH), subject (optional prefix), ca_file
// (optional PEM bundle of a private CA). TLS is required unless the host is loopback.
const Channel& email_channel();

}  // namespace flowrun
