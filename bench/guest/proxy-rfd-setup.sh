#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The proxy designs' setup (proxy-setup.sh) with Receive Flow Deliver and
# the local established tables on in the server's namespace.
MP_PROXY_RFD=1 exec "$(dirname "$(realpath "$0")")/proxy-setup.sh"
