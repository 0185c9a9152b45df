#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The proxy designs' setup (proxy-setup.sh) with Receive Flow Deliver on
# and the local established tables off in the server's namespace.
MP_PROXY_RFD=1 MP_PROXY_LEST=0 exec "$(dirname "$(realpath "$0")")/proxy-setup.sh"
