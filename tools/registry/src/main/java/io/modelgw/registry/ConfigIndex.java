package io.modelgw.registry;

import io.apicurio.common.apps.config.DynamicConfigPropertyList;
import java.util.List;
import javax.enterprise.context.ApplicationScoped;
import javax.enterprise.inject.Produces;

/* What apicurio-common-app-components-config-index-deployment generates at
 * build time (that artifact is not on Maven Central): no dynamic properties. */
@ApplicationScoped
public class ConfigIndex {
    @Produces
    @ApplicationScoped
    DynamicConfigPropertyList properties() {
        return new DynamicConfigPropertyList(List.of());
    }
}
