"""An ML2 mechanism driver that binds every port on any host without an agent.

The CI control plane has no Open vSwitch, OVN or L2 agent: Nova's fake compute driver still asks Neutron
to bind each server port, and the stock drivers refuse without a live agent. This driver accepts the first
segment offered, reports an OVS VIF and marks the port ACTIVE, so servers go ACTIVE through the real APIs.
Nothing is plumbed in the data plane.
"""

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class BindAllMechanismDriver(api.MechanismDriver):
    """Bind any port to its first segment as an OVS port, status ACTIVE."""

    def initialize(self):
        """Nothing to set up: the driver keeps no state."""

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context):
        """Bind ``context``'s port to the first segment it offers."""
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True, portbindings.OVS_HYBRID_PLUG: False},
                status=constants.PORT_STATUS_ACTIVE,
            )
            return
